"""Every bad input, setting or request: one line naming the file or key and the problem, the promised
exit status, no traceback, and no output written or changed. One table, one row per case."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from datadistill.cli import main


@dataclass
class Case:
    name: str
    argv: list[str]  # {placeholders} filled from the world's paths
    status: int
    message: str  # a fragment of the one error line
    absent: list[str] = field(default_factory=list)  # paths that must not exist afterwards
    unchanged: list[str] = field(default_factory=list)  # paths whose bytes must not change


TRAIN = ["student", "train", "--config", "{cfg}"]
CASES = [
    # data
    Case(
        "header-only train file",
        TRAIN + ["--set", "data.train={header_only}"],
        2,
        "header_only.tsv: no examples (only a header?)",
        absent=["{out}"],
    ),
    Case(
        "header-only dev file",
        TRAIN + ["--set", "data.dev={header_only}"],
        2,
        "header_only.tsv: no examples (only a header?)",
        absent=["{out}"],
    ),
    Case(
        "header-only eval file",
        ["eval", "--model", "{model}", "--data", "{header_only}"],
        2,
        "header_only.tsv: no examples (only a header?)",
    ),
    Case(
        "part.1 probs that are strings",
        TRAIN + ["--set", 'data.teacher_labelled=["{part1_strings}"]'],
        2,
        "part1_strings.jsonl, line 1: probs must be a list of numbers",
        absent=["{out}"],
    ),
    Case(
        "part.1 probs of another task",
        TRAIN + ["--set", 'data.teacher_labelled=["{part1_three}"]'],
        2,
        "part1_three, line 2: probs has 3 numbers for 2 labels",
        absent=["{out}"],
    ),
    # configs and settings
    Case("config is a folder", ["student", "train", "--config", "{tmp}"], 2, "is a folder, expected a JSON config"),
    Case("config is not UTF-8", ["student", "train", "--config", "{latin1}"], 2, "not UTF-8 text (byte 0xe9"),
    Case(
        "negative clip",
        TRAIN + ["--set", "train.clip=-1"],
        2,
        "train: clip must be at least 0, got -1",
        absent=["{out}"],
    ),
    Case("negative patience", TRAIN + ["--set", "train.patience=-1"], 2, "patience must be at least 1, got -1"),
    Case("negative eval_every", TRAIN + ["--set", "train.eval_every=-1"], 2, "eval_every must be at least 0"),
    Case("negative max_steps", TRAIN + ["--set", "train.max_steps=-1"], 2, "max_steps must be at least 0"),
    Case("negative weight decay", TRAIN + ["--set", "train.weight_decay=-1"], 2, "weight_decay must be at least 0"),
    Case("lr NaN", TRAIN + ["--set", "train.lr=NaN"], 2, "train.lr: expected a finite number, got nan"),
    Case("emb_dim -3", TRAIN + ["--set", "student.model.emb_dim=-3"], 2, "emb_dim must be in [0, 65536], got -3"),
    Case(
        "hidden on a linear bag",
        TRAIN + ["--set", "student.model.emb_dim=0", "--set", "student.model.hidden=8"],
        2,
        "hidden needs emb_dim > 0: a linear bag (emb_dim 0) has no vector to feed a hidden layer",
    ),
    Case(
        "ngram_buckets 0 with the default n-grams",
        TRAIN + ["--set", "student.features.ngrams=null", "--set", "student.features.ngram_buckets=0"],
        2,
        "features.ngram_buckets must be at least 2 when n-grams are used (the bow student's features.ngrams are "
        "[2, 3]), got 0; set features.ngrams to [] for none",
    ),
    Case("weighting idf", TRAIN + ["--set", "student.model.weighting=idf"], 2, "weighting must be one of tfidf, mean"),
    Case(
        "ngram_hash md5", TRAIN + ["--set", "student.features.ngram_hash=md5"], 2, "ngram_hash must be one of mix, poly"
    ),
    Case("dropout 5", TRAIN + ["--set", "student.model.dropout=5"], 2, "dropout must be in [0, 1), got 5.0"),
    Case("device gpu9", TRAIN + ["--set", "train.device=gpu9"], 2, "device must be auto, cpu, cuda or cuda:N"),
    Case(
        "teacher epochs 0",
        [
            "teacher",
            "finetune",
            "--model",
            "x",
            "--train",
            "{train}",
            "--dev",
            "{dev}",
            "--out",
            "{tmp}/t",
            "--set",
            "epochs=0",
        ],
        2,
        "teacher: epochs must be at least 1, got 0",
        absent=["{tmp}/t"],
    ),
    Case(
        "teacher clip -1",
        [
            "teacher",
            "finetune",
            "--model",
            "x",
            "--train",
            "{train}",
            "--dev",
            "{dev}",
            "--out",
            "{tmp}/t",
            "--set",
            "clip=-1",
        ],
        2,
        "teacher: clip must be at least 0",
    ),
    Case(
        "batch size 0",
        ["predict", "--model", "{model}", "--input", "{texts}", "--batch-size", "0"],
        2,
        "argument --batch-size: must be at least 1, got 0",
    ),
    # outputs
    Case(
        "label output is a folder",
        ["label", "--teacher-cmd", "{teacher}", "--input", "{texts}", "--output", "{tmp}"],
        2,
        "is a folder; the labelled output (--output) is a file",
    ),
    Case(
        "label output under a file",
        ["label", "--teacher-cmd", "{teacher}", "--input", "{texts}", "--output", "{train}/part.1"],
        2,
        "train.tsv is a file, not a folder",
    ),
    Case(
        "student output is a file",
        TRAIN + ["--set", "output={train}"],
        2,
        "is a file; it names the model folder",
        unchanged=["{train}"],
    ),
    Case(
        "augment over its input",
        ["augment", "--input", "{train}", "--output", "{train}"],
        2,
        "is the input file; augmentation would overwrite it",
        unchanged=["{train}"],
    ),
    Case(
        "augment a header-only file",
        ["augment", "--input", "{header_only}", "--output", "{tmp}/aug.tsv"],
        2,
        "no examples to augment",
        absent=["{tmp}/aug.tsv"],
    ),
    # models and inputs for prediction
    Case(
        "predict --input a folder",
        ["predict", "--model", "{model}", "--input", "{tmp}"],
        2,
        "is a folder, expected a file",
    ),
    Case(
        "predict --input invalid UTF-8",
        ["predict", "--model", "{model}", "--input", "{bad_utf8}"],
        2,
        "bad_utf8.txt, line 2: invalid UTF-8 (byte 0xff at byte 1)",
    ),
    Case(
        "model is a JSON file",
        ["predict", "--model", "{cfg}", "--input", "{texts}"],
        2,
        "is a file, not a model folder",
    ),
    Case(
        "model config.json with an invalid value",
        ["predict", "--model", "{broken_model}", "--input", "{texts}"],
        2,
        "config.json: cannot build the model it describes",
    ),
    Case(
        "unbalanced quote in --teacher-cmd",
        ["label", "--teacher-cmd", "python 'x.py", "--input", "{texts}", "--output", "{tmp}/p1"],
        2,
        "cannot be split into arguments",
        absent=["{tmp}/p1"],
    ),
    Case("empty --steps", ["run", "{pipe}", "--steps", ""], 2, "--steps is empty"),
    # what a second hostile review found
    Case(
        "eval --json over the data",
        ["eval", "--model", "{model}", "--data", "{dev}", "--json", "{dev}"],
        2,
        "is the evaluated data or a file of the model",
        unchanged=["{dev}"],
    ),
    Case(
        "eval --json over the model",
        ["eval", "--model", "{model}", "--data", "{dev}", "--json", "{model}/config.json"],
        2,
        "is the evaluated data or a file of the model",
        unchanged=["{model}/config.json"],
    ),
    Case(
        "label over its input",
        ["label", "--teacher-cmd", "{teacher}", "--input", "{texts}", "--output", "{texts}"],
        2,
        "is the input file; labelling would overwrite it",
        unchanged=["{texts}"],
    ),
    Case(
        "--cache naming a data file",
        ["label", "--teacher-cmd", "{teacher}", "--input", "{texts}", "--output", "{tmp}/p2", "--cache", "{train}"],
        2,
        "train.tsv: is not a score cache",
        unchanged=["{train}"],
        absent=["{tmp}/p2"],
    ),
    Case("empty output", TRAIN + ["--set", "output="], 2, "output must not be empty"),
    Case("empty work folder", ["run", "{pipe}", "--set", "work="], 2, "work must not be empty"),
    Case(
        "output a folder of other files",
        TRAIN + ["--set", "output={tmp}"],
        2,
        "holds files that are not a datadistill model",
    ),
    Case("negative seed", TRAIN + ["--set", "train.seed=-1"], 2, "seed must be in [0, 4294967295], got -1"),
    Case(
        "augment negative seed",
        ["augment", "--input", "{train}", "--output", "{tmp}/a2.tsv", "--seed", "-1"],
        2,
        "seed must be in [0, 4294967295]",
    ),
    Case(
        "huge n-gram table",
        TRAIN + ["--set", "student.features.ngram_buckets=1000000000000"],
        2,
        "ngram_buckets must be in [0, 100000000]",
    ),
    Case(
        "huge n_iter",
        ["augment", "--input", "{train}", "--output", "{tmp}/a3.tsv", "--n-iter", "100000000000"],
        2,
        "n_iter must be in [1, 10000]",
    ),
    Case(
        "timeout nan",
        ["label", "--teacher-cmd", "{teacher}", "--input", "{texts}", "--output", "{tmp}/p3", "--timeout", "nan"],
        2,
        "must be a finite number of seconds above 0",
    ),
    Case(
        "null label in JSON Lines",
        ["eval", "--model", "{model}", "--data", "{null_label}"],
        2,
        "null_label.jsonl, line 1: empty label (null)",
    ),
    Case("a null student", ["run", "{pipe}", "--set", "students.bow=null"], 2, "students.bow: expected an object"),
    Case(
        "match on single texts, refused before the teacher",
        ["run", "{pipe}", "--set", "students.bow.model.match=true"],
        2,
        "students.bow.model: match marks the words a text shares with its pair, and this data has single texts: "
        "remove match from the student's model settings or set it to false",
        absent=["{tmp}/work/student", "{tmp}/work/.steps"],
    ),
    Case(
        "lbfgs for a student that is not linear, refused before the teacher",
        ["run", "{pipe}", "--set", "students.bow.model.emb_dim=16", "--set", "distill.solver=lbfgs"],
        2,
        "students.bow: solver lbfgs solves a student linear in its weights (a bow with emb_dim 0), and this bow "
        "is not: set train.solver to auto or adamw",
        absent=["{tmp}/work/student", "{tmp}/work/.steps"],
    ),
    Case(
        "a vanishing L2 inverse strength",
        ["run", "{pipe}", "--set", "distill.l2_c=1e-25"],
        2,
        "distill: l2_c must be in [1e-06, 1000000.0], got 1e-25",
        absent=["{tmp}/work/student", "{tmp}/work/.steps"],
    ),
    Case("a null distill section", ["run", "{pipe}", "--set", "distill=null"], 2, "distill: expected an object"),
    Case(
        "duplicate labels for an external teacher",
        ["label", "--teacher-cmd", "{teacher}", "--labels", "1,1", "--input", "{texts}", "--output", "{tmp}/p4"],
        2,
        "each label must be a name, and only once",
    ),
    Case(
        "duplicate header column",
        ["eval", "--model", "{model}", "--data", "{dup_header}"],
        2,
        "dup_header.tsv, line 1: duplicate column 'label'",
    ),
    Case(
        "CR-only line ends",
        ["eval", "--model", "{model}", "--data", "{cr_only}"],
        2,
        "cr_only.tsv: lines end in CR alone; convert the file to LF line ends",
    ),
    Case(
        "CR-only line ends to predict",
        ["predict", "--model", "{model}", "--input", "{cr_texts}"],
        2,
        "cr_texts.txt, line 1: a carriage return (CR) inside the line",
    ),
    Case("too many shards", ["run", "{pipe}", "--set", "shards=100000"], 2, "shards must be in [0, 10000]"),
    Case(
        "a student named like a baseline",
        ["run", "{pipe}", "--set", 'students={{"x_base": {{}}}}'],
        2,
        "students: 'x_base' cannot name a student",
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, sentiment_module, write_tsv_module, student_config_module):
    """Paths every case can name: good data, a trained model, and the bad files."""
    from datadistill import train_student

    tmp = tmp_path_factory.mktemp("bad")
    rows = sentiment_module(80, seed=1)
    files = {
        k: write_tsv_module(tmp / f"{k}.tsv", sentiment_module(n, seed=s))
        for k, n, s in (("train", 80, 1), ("dev", 20, 2), ("test", 20, 3))
    }
    cfg = student_config_module(files, tmp, "bow", epochs=1)
    train_student(cfg)
    w = {"tmp": tmp, "train": files["train"], "dev": files["dev"], "model": tmp / "bow", "out": tmp / "never"}
    cfg["output"] = str(w["out"])
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    w["cfg"] = tmp / "cfg.json"
    w["header_only"] = write_tsv_module(tmp / "header_only.tsv", [])
    w["texts"] = tmp / "texts.txt"
    w["texts"].write_text("".join(t + "\n" for _, t in rows[:5]), encoding="utf-8")
    w["bad_utf8"] = tmp / "bad_utf8.txt"
    w["bad_utf8"].write_bytes("很好\n".encode() + b"\xff\xfe\n")
    w["latin1"] = tmp / "latin1.json"
    w["latin1"].write_bytes('{"output": "caf\u00e9"}'.encode("latin-1"))
    w["part1_strings"] = tmp / "part1_strings.jsonl"
    w["part1_strings"].write_text(json.dumps({"label": "1", "text_a": "很好", "probs": ["0.1", "0.9"]}) + "\n")
    w["part1_three"] = tmp / "part1_three"
    w["part1_three"].write_text("label\ttext_a\tprobs\tlogits\n1\t很好\t0.1 0.2 0.7\t\n", encoding="utf-8")
    import shutil

    w["broken_model"] = tmp / "broken_model"
    shutil.copytree(w["model"], w["broken_model"])
    conf = json.loads((w["broken_model"] / "config.json").read_text())
    conf["model"]["emb_dim"] = -3
    (w["broken_model"] / "config.json").write_text(json.dumps(conf))
    w["null_label"] = tmp / "null_label.jsonl"
    w["null_label"].write_text(json.dumps({"label": None, "text_a": "很好"}) + "\n")
    w["cr_only"] = tmp / "cr_only.tsv"
    w["cr_only"].write_bytes("label\ttext_a\r1\t很好\r0\t很差\r".encode())
    w["cr_texts"] = tmp / "cr_texts.txt"
    w["cr_texts"].write_bytes("很好\r很差\r".encode())
    w["dup_header"] = tmp / "dup_header.tsv"
    w["dup_header"].write_text("label\tlabel\ttext_a\n1\t0\t很好\n", encoding="utf-8")
    w["edited_arch"] = tmp / "edited_arch"
    shutil.copytree(w["model"], w["edited_arch"])
    conf = json.loads((w["edited_arch"] / "config.json").read_text())
    conf["arch"] = "bowz"
    (w["edited_arch"] / "config.json").write_text(json.dumps(conf))
    teacher = tmp / "teacher.py"
    teacher.write_text("import sys\nfor line in sys.stdin:\n    print('1\\t0.2 0.8')\n")
    w["teacher"] = f"{sys.executable} {teacher}"
    pipe = {
        "work": str(tmp / "work"),
        "data": {"train": str(files["train"]), "dev": str(files["dev"]), "test": str(files["test"])},
        "teacher": {"kind": "command", "command": w["teacher"]},
        "students": {"bow": {}},
    }
    w["pipe"] = tmp / "pipe.json"
    w["pipe"].write_text(json.dumps(pipe))
    return w


def _fill(text: str, w: dict) -> str:
    return text.format(**{k: str(v) for k, v in w.items()})


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_clear_line_and_leaves_no_output(case, world, capsys):
    before = {p: Path(_fill(p, world)).read_bytes() for p in case.unchanged}
    try:
        status = main([_fill(a, world) for a in case.argv])
    except SystemExit as e:  # argparse's own errors: usage and one error line
        status = e.code
    err = capsys.readouterr().err
    assert status == case.status, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and _fill(case.message, world) in errors[0], err
    for p in case.absent:
        assert not Path(_fill(p, world)).exists(), p
    for p, data in before.items():
        assert Path(_fill(p, world)).read_bytes() == data, p


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "datadistill.cli", *args], capture_output=True, **kw)


@pytest.mark.slow
def test_stdin_cases_invalid_utf8_closed_and_a_broken_pipe(world):
    r = _cli("predict", "--model", str(world["model"]), input="很好\n".encode() + b"\xff\n")
    assert r.returncode == 2 and b"stdin, line 2: invalid UTF-8 (byte 0xff at byte 1)" in r.stderr
    assert r.stdout.decode().count("\n") == 1  # the good line before it was answered
    r = _cli("predict", "--model", str(world["model"]), stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout == b""
    closed = subprocess.run(
        f"{sys.executable} -m datadistill.cli predict --model {world['model']} <&-", shell=True, capture_output=True
    )
    assert closed.returncode == 2 and b"stdin is closed" in closed.stderr
    many = world["tmp"] / "many.txt"
    many.write_text("很好\n" * 20000, encoding="utf-8")
    piped = subprocess.run(
        f"{sys.executable} -m datadistill.cli predict --model {world['model']} --input {many} "
        f"--batch-size 64 | head -1",
        shell=True,
        capture_output=True,
    )
    assert piped.stdout.count(b"\n") == 1 and piped.stderr == b""  # ends quietly


@pytest.mark.slow
def test_predict_answers_every_line_blank_ones_with_a_blank_line(world):
    r = _cli("predict", "--model", str(world["model"]), input="很好\n\n\n很差\n".encode())
    out = r.stdout.decode().split("\n")
    assert r.returncode == 0 and len(out) == 5 and out[1] == out[2] == "" and out[0] and out[3]
    table = world["tmp"] / "table.tsv"
    table.write_text("label\ttext_a\n1\t很好\n0\t很差\n", encoding="utf-8")
    r = _cli("predict", "--model", str(world["model"]), "--input", str(table))
    assert r.returncode == 0 and len(r.stdout.decode().splitlines()) == 2  # the header is not predicted


def test_eval_json_into_a_missing_folder_creates_it(world, capsys):
    out = world["tmp"] / "new" / "folder" / "m.json"
    assert main(["eval", "--model", str(world["model"]), "--data", str(world["dev"]), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["n"] == 20


def test_outputs_get_the_umask_mode_not_0600(world, tmp_path):
    """Another user or a service account can read a model folder, as with any file the user writes."""
    import os

    from datadistill import train_student

    old = os.umask(0o022)
    try:
        cfg = json.loads(Path(world["cfg"]).read_text())
        cfg["output"] = str(tmp_path / "m")
        train_student(cfg)
    finally:
        os.umask(old)
    for f in (tmp_path / "m").iterdir():
        assert f.stat().st_mode & 0o777 == 0o644, f
