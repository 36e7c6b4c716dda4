from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from datadistill.cli import main  # noqa: E402
from datadistill.config import ConfigError  # noqa: E402
from datadistill.data import read_examples  # noqa: E402
from datadistill.data.cache import score_cache_name  # noqa: E402
from datadistill.pipeline import Pipeline, _students_settings, load_config, write_shards  # noqa: E402
from datadistill.run_config import config_from_args  # noqa: E402
from datadistill.student import StudentConfig  # noqa: E402
from datadistill.teacher.hf import resolve_precision  # noqa: E402

ALL = ("teacher", "augment", "label", "students", "report")


def _config(tmp_path, sentiment, write_tsv, tiny_checkpoint, **extra):
    files = {
        k: write_tsv(tmp_path / f"{k}.tsv", sentiment(n, seed=s))
        for k, n, s in (("train", 160, 1), ("dev", 40, 2), ("test", 40, 3))
    }
    unl = tmp_path / "unl.txt"
    unl.write_text("".join(t + "\n" for _, t in sentiment(50, seed=4)), encoding="utf-8")
    ckpt = tiny_checkpoint(tmp_path / "base", "bert")
    cfg = {
        "work": str(tmp_path / "work"),
        "data": {
            "train": str(files["train"]),
            "dev": str(files["dev"]),
            "test": str(files["test"]),
            "unlabelled": [str(unl)],
            "unlabelled_ratio": 0.5,
        },
        "teacher": {"model": str(ckpt), "epochs": 5, "lr": 2e-3, "batch_size": 16, "max_len": 64, "patience": 5},
        "augment": {"n_iter": 2, "seed": 1},
        # the teacher alone: the tests here are of the steps; those of the default ensemble ("auto") say so
        "label": {"batch_size": 16, "chunk_size": 16, "classical_weight": 0},
        "students": {
            "bow": {
                "arch": "bow",
                "features": {"tokenizer": "char", "ngrams": [2], "ngram_buckets": 5000},
                "model": {"emb_dim": 16},
            }
        },
        "train": {"epochs": 3, "batch_size": 16, "lr": 0.01},
        "distill": {"loss": "kl"},
        "shards": 3,
        **extra,
    }
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(cfg))
    return path, cfg


@pytest.fixture
def tiny_config(sentiment, write_tsv, tiny_checkpoint):
    """tiny_config(tmp_path, **extra) -> (path, cfg): a pipeline on the synthetic task with a 2-layer teacher."""
    return lambda tmp_path, **extra: _config(tmp_path, sentiment, write_tsv, tiny_checkpoint, **extra)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, sentiment_module, write_tsv_module, tiny_checkpoint_module):
    """One whole pipeline run (every step), shared by the tests that only read it or re-run it unchanged."""
    tmp = tmp_path_factory.mktemp("pipe")
    path, cfg = _config(tmp, sentiment_module, write_tsv_module, tiny_checkpoint_module)
    assert main(["run", str(path), "--quiet"]) == 0
    return tmp, path, cfg


@pytest.fixture
def finished_copy(finished, tmp_path):
    """A copy of the finished run to change: same work folder contents, own config."""
    import shutil

    src, _, cfg = finished
    shutil.copytree(src, tmp_path, dirs_exist_ok=True)
    cfg = json.loads(json.dumps(cfg).replace(str(src), str(tmp_path)))
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(cfg))
    return path, cfg


def _skipped(err: str, steps=ALL) -> bool:
    return all(f"[{step}] up to date, skipped" in err for step in steps)


@pytest.mark.slow
def test_pipeline_writes_the_seed_layout_the_report_and_even_shards(finished):
    tmp, _, _ = finished
    work = tmp / "work"
    for rel in (
        "teacher/teacher.json",
        "student/unsup_train_aug",
        "student/train/part.0",
        "student/train/part.1",
        "student/bow/model.safetensors",
        "student/bow_base/model.safetensors",
        "report/report.md",
        "report/report.json",
    ):
        assert (work / rel).exists(), rel
    part1 = read_examples(work / "student" / "train" / "part.1")
    assert len(part1) == 50 + 100  # all 50 unlabelled texts, augmented capped at 50 / 0.5
    assert all(len(e.probs) == 2 for e in part1)
    report = json.loads((work / "report" / "report.json").read_text())
    assert [r["model"] for r in report["rows"]] == ["teacher", "classical", "bow_base", "bow"]
    assert all(r["texts_per_s"] > 0 and 0 <= r["test_accuracy"] <= 1 for r in report["rows"])
    # speed-up = a row's throughput over the teacher's, measured in the same run (the ratio of two tiny
    # models' speeds on a shared machine is not asserted: timing belongs to bench/)
    assert report["rows"][2]["speedup"] == pytest.approx(
        report["rows"][2]["texts_per_s"] / report["rows"][0]["texts_per_s"]
    )
    assert report["rows"][1]["kind"] == "classical" and report["rows"][1]["test_accuracy"] >= 0.9
    shards = sorted((work / "student" / "train" / "shards").iterdir())
    sizes = [len(read_examples(s)) for s in shards]
    assert len(shards) == 3 and max(sizes) - min(sizes) <= 1 and sum(sizes) == 160 + 150


@pytest.mark.slow
def test_a_second_run_a_fresh_copy_of_the_data_or_checkpointing_off_redo_nothing(finished, capsys):
    _, path, cfg = finished
    capsys.readouterr()
    assert main(["run", str(path), "--quiet"]) == 0
    assert _skipped(capsys.readouterr().err)
    # the data written again with the same bytes and other times (a fresh copy of the data folder): no rerun
    for k in ("train", "dev", "test"):
        f = Path(cfg["data"][k])
        data = f.read_bytes()
        f.unlink()
        f.write_bytes(data)
        os.utime(f, (1e9, 1e9))
    assert main(["run", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert _skipped(err) and "[students] training" not in err
    # checkpointing off changes how a step runs, not what it makes: nothing is redone
    assert (
        main(["run", str(path), "--quiet", "--set", "train.checkpoint=false", "--set", "teacher.checkpoint=false"]) == 0
    )
    assert _skipped(capsys.readouterr().err)


@pytest.mark.slow
def test_data_at_another_path_with_the_same_bytes_is_the_same_input(finished_copy, capsys):
    """Fingerprints hold contents, not paths: a moved data folder redoes nothing."""
    path, cfg = finished_copy
    assert main(["run", str(path), "--quiet"]) == 0
    assert _skipped(capsys.readouterr().err)


@pytest.mark.slow
def test_a_changed_student_setting_reruns_the_students_and_the_report_only(finished_copy, capsys):
    path, _ = finished_copy
    assert main(["run", str(path), "--quiet", "--set", "train.epochs=2"]) == 0
    err = capsys.readouterr().err
    assert _skipped(err, ("teacher", "augment", "label"))
    assert "[students] running" in err and "[report] running" in err


@pytest.mark.slow
def test_a_new_teacher_relabels_and_retrains_only_the_distilled_student(finished_copy, capsys):
    path, _ = finished_copy
    assert main(["run", str(path), "--quiet", "--set", "teacher.epochs=4"]) == 0
    err = capsys.readouterr().err
    assert "[teacher] running" in err and "[label] running" in err and "[students] bow_base: up to date" in err
    assert "[students] training bow (part.0 + part.1)" in err


@pytest.mark.slow
def test_a_students_own_distill_setting_retrains_only_its_distilled_model(finished_copy, capsys):
    path, _ = finished_copy
    assert main(["run", str(path), "--quiet", "--set", "students.bow.distill.balance_part1=true"]) == 0
    err = capsys.readouterr().err
    assert _skipped(err, ("teacher", "augment", "label")) and "[students] bow_base: up to date" in err
    assert "[students] training bow (part.0 + part.1)" in err and "[report] running" in err


@pytest.mark.slow
def test_asking_only_for_the_students_after_the_teacher_changed_is_refused(finished_copy, capsys):
    path, _ = finished_copy
    work = path.parent / "work"
    before = (work / "student" / "bow" / "model.safetensors").read_bytes()
    assert main(["run", str(path), "--quiet", "--steps", "students", "--set", "teacher.epochs=4"]) == 2
    err = capsys.readouterr().err
    assert (
        "error: step 'students' reads the output of step 'teacher', which is out of date (its settings changed); "
        "run it too (--steps teacher,label,students) or leave out --steps" in err
    )
    assert "[students] training" not in err
    assert (work / "student" / "bow" / "model.safetensors").read_bytes() == before
    # a changed augmentation likewise stops the label step from reading the old augmented texts
    assert main(["run", str(path), "--quiet", "--steps", "label", "--set", "augment.seed=2"]) == 2
    assert (
        "step 'label' reads the output of step 'augment', which is out of date (its settings changed)"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_a_partial_labelling_of_an_older_label_input_is_not_resumed(finished_copy, capsys):
    """The repro of a killed label step rerun with other settings: part.1 must hold the new texts only."""
    from datadistill.label import _fingerprint, partial_path
    from datadistill.teacher.hf import HFTeacher

    path, cfg = finished_copy
    work = path.parent / "work"
    part1 = work / "student" / "train" / "part.1"
    lines = part1.read_text(encoding="utf-8").splitlines(keepends=True)
    partial_path(part1).write_text("".join(lines[:41]), encoding="utf-8")  # as if killed after 40 rows
    teacher = HFTeacher(work / "teacher", precision=cfg["label"].get("precision", "auto"))
    (work / "student" / "train" / "part.1.partial.json").write_text(
        json.dumps(_fingerprint(work / "student" / "label_input.tsv", teacher))
    )
    part1.unlink()
    assert (
        main(
            [
                "run",
                str(path),
                "--quiet",
                "--steps",
                "augment,label",
                "--set",
                "data.max_label_rows=60",
                "--set",
                "augment.seed=2",
            ]
        )
        == 0
    )
    assert "resuming" not in capsys.readouterr().err
    want = [e.text_a for e in read_examples(work / "student" / "label_input.tsv", require_label=False)]
    assert [e.text_a for e in read_examples(part1)] == want and len(want) == 60


COMMAND_TEACHER = """
import sys
good = ("很好", "不错", "满意", "喜欢", "干净", "舒服", "推荐", "划算", "漂亮", "热情")
for line in sys.stdin:  # probabilities in the order (1, 0): the config says labels ["1", "0"]
    print("1\t0.9 0.1" if any(w in line for w in good) else "0\t0.1 0.9")
"""


@pytest.mark.slow
def test_an_external_command_teacher_runs_the_whole_pipeline(tmp_path, tiny_config, capsys):
    script = tmp_path / "keyword_teacher.py"
    script.write_text(COMMAND_TEACHER, encoding="utf-8")
    path, cfg = tiny_config(
        tmp_path, teacher={"kind": "command", "command": f"{sys.executable} {script}", "labels": ["1", "0"]}, shards=0
    )
    assert main(["run", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "[teacher]" not in err  # nothing to fine-tune
    work = tmp_path / "work"
    part1 = read_examples(work / "student" / "train" / "part.1")
    assert len(part1) == 150  # probabilities in the data's label order (0, 1), whatever order the program uses
    assert all(e.probs == ([0.1, 0.9] if e.label == "1" else [0.9, 0.1]) for e in part1)
    report = json.loads((work / "report" / "report.json").read_text())
    assert [r["model"] for r in report["rows"]] == ["teacher", "classical", "bow_base", "bow"]
    assert report["rows"][0]["test_accuracy"] == 1.0  # the keyword rule is the synthetic task's truth
    assert main(["run", str(path), "--quiet"]) == 0
    assert _skipped(capsys.readouterr().err, ("augment", "label", "students", "report"))
    # another command is another teacher: labelling is redone
    assert main(["run", str(path), "--quiet", "--set", f"teacher.command={sys.executable} {script} --again"]) == 0
    assert "[label] running" in capsys.readouterr().err
    # so is an edited script: its scores are not taken from the score cache
    script.write_text(COMMAND_TEACHER.replace("0.9 0.1", "0.8 0.2"), encoding="utf-8")
    assert main(["run", str(path), "--quiet", "--steps", "augment,label"]) == 0
    assert "(150 scored" in capsys.readouterr().err


def test_a_teacher_kind_is_checked_on_load(tmp_path, tiny_config):
    path, cfg = tiny_config(tmp_path)
    with pytest.raises(ConfigError, match=r"teacher.kind: unknown teacher kind 'comand'; did you mean 'command'"):
        load_config(_write(tmp_path, {**cfg, "teacher": {"kind": "comand", "command": "x"}}))
    with pytest.raises(ConfigError, match=r"command is required"):
        load_config(_write(tmp_path, {**cfg, "teacher": {"kind": "command"}}))


@pytest.mark.slow
def test_killed_pipeline_resumes_without_redoing_finished_steps(tmp_path, tiny_config):
    path, _ = tiny_config(tmp_path)
    argv = [sys.executable, "-m", "datadistill.cli", "run", str(path), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps = tmp_path / "work" / ".steps"
    deadline = time.time() + 600  # a guard against a hang: a loaded 2-core machine took over 120 s to get here
    while time.time() < deadline and not (steps / "augment.json").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "work" / "teacher" / ".step.json").exists() and not (steps / "report.json").exists()
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "[teacher] up to date, skipped" in r.stderr and "[augment] up to date, skipped" in r.stderr
    assert (tmp_path / "work" / "report" / "report.md").exists()


@pytest.mark.slow
def test_runs_naming_one_teacher_dir_share_one_fine_tuning(tmp_path, capsys, tiny_config):
    shared = tmp_path / "shared_teacher"
    path, cfg = tiny_config(tmp_path, teacher_dir=str(shared))
    assert main(["run", str(path), "--quiet", "--steps", "teacher"]) == 0
    assert (shared / "teacher.json").exists() and not (tmp_path / "work" / "teacher").exists()
    other = _write(tmp_path, {**cfg, "work": str(tmp_path / "work2")})
    capsys.readouterr()
    assert main(["run", str(other), "--quiet"]) == 0  # every step, reading the shared teacher
    assert "[teacher] up to date, skipped" in capsys.readouterr().err
    report = json.loads((tmp_path / "work2" / "report" / "report.json").read_text())
    assert report["rows"][0]["model"] == "teacher" and report["rows"][0]["size_mb"] > 0
    model_files = [f for f in shared.iterdir() if f.is_file() and not f.name.startswith(("scores.", "."))]
    # label.precision auto: bf16 on a CPU with native bf16, else fp32; one cache file per precision
    cache = shared / score_cache_name(resolve_precision(torch.device("cpu"), "auto", inference=True))
    assert cache.exists()  # the score cache is not part of the teacher's size
    assert report["rows"][0]["size_mb"] == pytest.approx(sum(f.stat().st_size for f in model_files) / 2**20)
    # a third run labels the same texts: every score comes from the teacher's score cache
    third = _write(tmp_path, {**cfg, "work": str(tmp_path / "work3")})
    assert main(["run", str(third), "--quiet", "--steps", "augment,label"]) == 0
    part1 = tmp_path / "work3" / "student" / "train" / "part.1"
    assert f"(0 scored; {len(read_examples(part1))} from the score cache)" in capsys.readouterr().err
    assert part1.read_bytes() == (tmp_path / "work2" / "student" / "train" / "part.1").read_bytes()
    # a different teacher recipe into the same folder trains again
    assert main(["run", str(other), "--quiet", "--steps", "teacher", "--set", "teacher.epochs=1"]) == 0
    assert "[teacher] running" in capsys.readouterr().err


def test_config_errors(tmp_path, tiny_config):
    path, cfg = tiny_config(tmp_path)
    cfg["studnets"] = cfg.pop("students")
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="unknown key 'studnets'; did you mean 'students'"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"students.bow: unknown key 'archh'"):
        load_config(_write(tmp_path, {**cfg, "students": {"bow": {"archh": "bow"}}}))
    cfg["students"] = cfg.pop("studnets")
    with pytest.raises(ConfigError, match="label.precision must be auto, fp32, bf16 or fp16, got 'int8'"):
        load_config(_write(tmp_path, {**cfg, "label": {"precision": "int8"}}))


def test_a_student_takes_the_runs_training_settings_with_its_own_on_top(tmp_path, tiny_config):
    _, cfg = tiny_config(tmp_path)
    cfg["train"] = {**cfg.get("train", {}), "epochs": 10, "lr": 0.01}
    cfg["distill"] = {"loss": "kl", "epochs": 6}
    cfg["students"] = {
        "bow": {"arch": "bow", "train": {"epochs": 3}, "distill": {"balance_part1": True}},
        "cnn": {"arch": "cnn", "distill": {"epochs": 2}},
    }
    run = load_config(_write(tmp_path, cfg))
    bow_base, bow = run.train_configs("bow")
    assert (bow_base.epochs, bow_base.lr, bow_base.balance_part1, bow_base.loss) == (3, 0.01, False, "hard")
    assert (bow.epochs, bow.lr, bow.balance_part1, bow.loss) == (6, 0.01, True, "kl")  # the run's distill wins
    cnn_base, cnn = run.train_configs("cnn")
    assert (cnn_base.epochs, cnn.epochs, cnn.balance_part1) == (10, 2, False)
    runs = dict(Pipeline(run).student_runs())
    assert runs["bow"].train == bow and runs["cnn_base"].train == cnn_base
    assert type(runs["bow"].student) is StudentConfig  # a model folder records the network, not the training
    cfg["students"]["bow"]["distill"] = {"balance_parts": True}
    with pytest.raises(
        ConfigError, match="students.bow.distill: unknown key 'balance_parts'; did you mean 'balance_part1'"
    ):
        load_config(_write(tmp_path, cfg))
    cfg["students"]["bow"] = {"arch": "bow", "train": {"lr": 0}}
    with pytest.raises(ConfigError, match="students.bow.train: lr must be above 0"):
        load_config(_write(tmp_path, cfg))
    cfg["students"]["bow"] = {"arch": "bow", "distill": {"balance_part1": True}}
    with pytest.raises(ConfigError, match=r"c.json: distill: unknown key 'lrr'"):  # the run's mistake, named so
        load_config(_write(tmp_path, cfg), ["distill.lrr=1"])
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, cfg), ["students.bwo.distill.epochs=2"])
    assert str(e.value) == (
        f"{tmp_path / 'c.json'}.students.bwo: not a student of this run (bow, cnn); to add one, give its arch too "
        "(--set students.bwo.arch=bow)"
    )
    assert list(load_config(_write(tmp_path, cfg), ["students.bwo.arch=lstm"]).students) == ["bow", "cnn", "bwo"]
    # a student whose own keys change nothing is recorded as one without them (a finished run stays up to date)
    plain = {**cfg, "students": {"bow": {"arch": "bow"}, "cnn": {"arch": "cnn"}}}
    same = {
        **cfg,
        "students": {"bow": {"arch": "bow", "distill": {"loss": "kl", "checkpoint": False}}, "cnn": {"arch": "cnn"}},
    }
    settings = [_students_settings(Pipeline(load_config(_write(tmp_path, c)))) for c in (plain, same, cfg)]
    assert settings[0] == settings[1] != settings[2]


def test_a_setting_of_a_default_student_keeps_the_other_defaults(tmp_path, senti_files):
    cfg = config_from_args(None, ["students.cnn.model.filters=32"], **{k: str(v) for k, v in senti_files.items()})
    assert {n: s.arch for n, s in cfg.students.items()} == {"bow": "bow", "cnn": "cnn"}
    assert cfg.students["cnn"].model["filters"] == 32


def _write(tmp_path, cfg):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({k: v for k, v in cfg.items() if k != "studnets"}))
    return p


def test_shards_are_equal_and_hold_every_row(tmp_path, sentiment, write_tsv):
    synthetic_sentiment = sentiment
    p0 = write_tsv(tmp_path / "part.0", synthetic_sentiment(7))
    p1 = tmp_path / "part.1"
    p1.write_text(
        "label\ttext_a\tprobs\tlogits\n" + "".join(f"1\t文本{i}\t0.1 0.9\t\n" for i in range(10)), encoding="utf-8"
    )
    assert len(write_shards([p0, p1], tmp_path / "shards", 9)) == 9
    paths = write_shards([p0, p1], tmp_path / "shards", 4)  # a new N replaces the old shards
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == sorted(p.name for p in paths)
    rows = [read_examples(p) for p in paths]
    assert sorted(len(r) for r in rows) == [4, 4, 4, 5]
    assert sorted(e.text_a for r in rows for e in r) == sorted(
        [t for _, t in synthetic_sentiment(7)] + [f"文本{i}" for i in range(10)]
    )


@pytest.mark.slow
def test_a_teacher_no_better_than_the_simple_models_is_marked_in_the_report(tmp_path, tiny_config, capsys):
    script = tmp_path / "always_negative.py"
    script.write_text("import sys\nfor line in sys.stdin:\n    print('0\\t0.9 0.1')\n", encoding="utf-8")
    path, _ = tiny_config(tmp_path, teacher={"kind": "command", "command": f"{sys.executable} {script}"}, shards=0)
    assert main(["run", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    report = json.loads((tmp_path / "work" / "report" / "report.json").read_text())
    assert "the teacher (accuracy 50.00) is not above classical (" in report["warnings"][0]
    assert "warning: [report] the teacher (accuracy 50.00) is not above classical" in err
    md = (tmp_path / "work" / "report" / "report.md").read_text()
    assert "**Warning:** the teacher (accuracy 50.00) is not above classical" in md


@pytest.mark.slow
def test_labelling_says_plainly_when_the_teacher_is_no_better_than_a_classical_model(tmp_path, tiny_config, capsys):
    path, _ = tiny_config(tmp_path)
    assert main(["run", str(path), "-q", "--steps", "teacher,augment,label", "--set", "teacher.max_steps=1"]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: [label] the teacher on dev: accuracy 50.00 (classical 100.00): it is not above a classical "
        "TF-IDF + linear SVM trained on the same labels" in err
    )
    # "auto" (the default): the classical model, above the teacher, joins it in labelling part.1
    args = ["--set", "teacher.max_steps=1", "--set", "label.classical_weight=auto"]
    assert main(["run", str(path), "-q", "--steps", "teacher,augment,label", *args]) == 0
    err = capsys.readouterr().err
    assert "[label] ensemble teacher: (1 - " in err and "warning: [label] the teacher on dev" not in err
    assert json.loads((tmp_path / "work" / "student" / "ensemble.json").read_text())["setting"] == "auto"


@pytest.mark.slow
def test_a_teacher_that_answers_labels_only_labels_alone_by_default_and_is_refused_a_fixed_blend(
    tmp_path, tiny_config, capsys
):
    script = tmp_path / "labels_only.py"
    seen = tmp_path / "seen.txt"  # one line per text the teacher was asked about
    labels_only = COMMAND_TEACHER.replace("\t0.9 0.1", "").replace("\t0.1 0.9", "")
    script.write_text(
        labels_only.replace(
            "for line in sys.stdin:", f"for line in sys.stdin:\n    open({str(seen)!r}, 'a').write('x\\n')"
        ),
        encoding="utf-8",
    )
    path, _ = tiny_config(
        tmp_path,
        teacher={"kind": "command", "command": f"{sys.executable} {script}"},
        label={"batch_size": 16, "chunk_size": 16},  # classical_weight "auto", the default
        shards=0,
    )
    assert main(["run", str(path), "-q", "--steps", "augment,label"]) == 0
    err = capsys.readouterr().err
    assert "[label] ensemble: this teacher gives no probabilities to average; it labels alone" in err
    assert not (tmp_path / "work" / "student" / "ensemble.json").exists()
    # it was asked about one dev batch (16 of the 40 dev texts) besides the texts it labelled
    labelled = len(read_examples(tmp_path / "work" / "student" / "train" / "part.1"))
    assert len(seen.read_text().splitlines()) == labelled + 16
    assert main(["run", str(path), "-q", "--steps", "label", "--set", "label.classical_weight=0.5"]) == 2
    assert (
        "label.classical_weight: this teacher gives no probabilities to average with the classical model's; "
        "set label.classical_weight to 0" in capsys.readouterr().err
    )


def test_a_key_added_later_stays_out_of_fingerprints_while_it_holds_its_old_default():
    from datadistill.pipeline import settings_of
    from datadistill.train import TrainConfig

    assert "logit_adjust" not in settings_of(TrainConfig())  # runs recorded before the key existed stay up to date
    assert settings_of(TrainConfig(logit_adjust=True))["logit_adjust"] is True
    # the solver enters as the student step resolves it: "adamw" for every student trained before it existed
    assert not {"solver", "l2_c", "solver_iterations"} & set(settings_of(TrainConfig(solver="adamw", l2_c=16.0)))
    assert settings_of(TrainConfig(solver="lbfgs"))["solver"] == "lbfgs"
    # l2_c's default moved from 16 to "auto": a bag solved at 16 is solved again (a student's own record
    # leaves l2_c out where the loop trains it, so a CNN stays up to date)
    assert settings_of(TrainConfig())["l2_c"] == "auto"


def test_the_measuring_time_comes_from_the_environment_and_a_bad_one_is_named(monkeypatch):
    from datadistill.errors import ConfigError
    from datadistill.speed import latency, measure_seconds

    monkeypatch.setenv("DATADISTILL_MEASURE_SECONDS", "0.5")
    assert measure_seconds() == 0.5
    seen = []
    latency(lambda texts: seen.append(texts), ["a"] * 200)
    assert len(seen) == 20 + 75  # warm-up, then 150 texts per measuring second
    for bad in ("0", "-1", "soon", "inf"):
        monkeypatch.setenv("DATADISTILL_MEASURE_SECONDS", bad)
        with pytest.raises(
            ConfigError, match=f"DATADISTILL_MEASURE_SECONDS must be a number of seconds above 0, got '{bad}'"
        ):
            measure_seconds()


def test_a_bad_measuring_time_is_refused_before_the_first_step(tmp_path, tiny_config, monkeypatch, capsys):
    path, cfg = tiny_config(tmp_path)
    monkeypatch.setenv("DATADISTILL_MEASURE_SECONDS", "soon")
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "DATADISTILL_MEASURE_SECONDS must be a number of seconds above 0, got 'soon'" in err
    assert not (Path(cfg["work"]) / "teacher").exists()


def test_a_students_record_holds_only_the_train_keys_its_solver_reads(senti_files, tmp_path, monkeypatch):
    """A solved bag is not retrained for the loop's learning rate, nor a CNN for the solver's C."""
    from datadistill.pipeline import _student_unit

    monkeypatch.chdir(tmp_path)  # the default work folder

    files = {k: str(v) for k, v in senti_files.items()}

    def fingerprints(*overrides):
        p = Pipeline(config_from_args(None, ["students.bow.model.emb_dim=0", *overrides], **files))
        return {name: _student_unit(p, run)[1]["settings"] for name, run in p.student_runs()}

    plain = fingerprints()
    assert {k[:3] for k in plain} == {"bow", "cnn"}  # each with its baseline
    changed = {
        key: {n for n, fp in fingerprints(key).items() if fp != plain[n]}
        for key in ("train.lr=0.01", "train.batch_size=32", "train.l2_c=4", "train.solver_iterations=10")
    }
    bow, cnn = {n for n in plain if n.startswith("bow")}, {n for n in plain if n.startswith("cnn")}
    assert changed["train.lr=0.01"] == changed["train.batch_size=32"] == cnn
    assert changed["train.l2_c=4"] == changed["train.solver_iterations=10"] == bow
    # read by both solvers, and only when distilling; the default distill keys (loss kl) stay
    assert {n for n, fp in fingerprints("distill.temperature=2").items() if fp != plain[n]} == {"bow", "cnn"}
    # a bag too wide to solve, trained by the loop (its metrics.json says so), is retrained for the loop's keys
    p = Pipeline(config_from_args(None, ["students.bow.model.emb_dim=0"], **files))
    folder = dict(p.student_runs())["bow"].output
    Path(folder).mkdir(parents=True)
    (Path(folder) / "metrics.json").write_text(json.dumps({"chosen": {"solver": "adamw"}}))
    fell_back = fingerprints()
    assert {n for n, fp in fingerprints("train.lr=0.01").items() if fp != fell_back[n]} == {"bow", "cnn_base", "cnn"}
    assert Pipeline(config_from_args(None, ["distill.temperature=2"], **files)).cfg.distill == {
        "loss": "kl",
        "epochs": 6,
        "temperature": 2.0,
    }


def test_nb_scale_for_a_student_the_loop_trains_is_refused_before_the_first_step(tmp_path, tiny_config, capsys):
    path, cfg = tiny_config(tmp_path)
    cfg["students"]["bow"]["model"] = {"emb_dim": 8, "hidden": 4}  # a bag with a hidden layer: the loop's
    cfg["train"] = {**cfg.get("train", {}), "nb_scale": True}
    path.write_text(json.dumps(cfg))
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "students.bow: train.nb_scale scales a solved linear bag's inputs, and this bow is trained by the " in err
    assert not (Path(cfg["work"]) / "teacher").exists()


@pytest.mark.slow
def test_the_teachers_dev_scores_come_from_the_score_cache_when_the_label_step_runs_again(
    tmp_path, tiny_config, capsys
):
    script = tmp_path / "counting_teacher.py"
    seen = tmp_path / "seen.txt"  # one line per text the teacher was asked about
    script.write_text(
        COMMAND_TEACHER.replace(
            "for line in sys.stdin:", f"for line in sys.stdin:\n    open({str(seen)!r}, 'a').write('x\\n')", 1
        ),
        encoding="utf-8",
    )
    teacher = {"kind": "command", "command": f"{sys.executable} {script}", "labels": ["1", "0"]}
    path, _ = tiny_config(tmp_path, teacher=teacher, label={"batch_size": 16, "chunk_size": 16}, shards=0)
    assert main(["run", str(path), "-q", "--steps", "augment,label"]) == 0
    labelled = len(read_examples(tmp_path / "work" / "student" / "train" / "part.1"))
    assert len(seen.read_text().splitlines()) == labelled + 40  # part.1 and the 40 dev texts
    first = (tmp_path / "work" / "student" / "train" / "part.1").read_bytes()
    capsys.readouterr()
    assert main(["run", str(path), "-q", "--steps", "label", "--force"]) == 0
    assert len(seen.read_text().splitlines()) == labelled + 40  # nothing asked again: dev included
    assert (tmp_path / "work" / "student" / "train" / "part.1").read_bytes() == first
