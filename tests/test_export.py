"""ONNX export: every student kind, single texts and pairs, gives torch's probabilities (within 1e-5)
through onnxruntime; the export folder is self-contained and its predictor never imports torch."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from datadistill import load_model, train_student  # noqa: E402
from datadistill.cli import main  # noqa: E402
from datadistill.errors import ModelFolderError  # noqa: E402
from datadistill.export import export_folder  # noqa: E402
from datadistill.onnx_predict import OnnxPredictor  # noqa: E402
from datadistill.predict import Predictor, detect_backend  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "models_v0"
EDGE = ["好", "", "   ", "很好" * 300, "iPhone 4 的屏幕 3.5 寸，很好", "[UNK]很好[UNK]", "😀房间很干净", "ａｂｃ１２３"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, sentiment_module, write_tsv_module, student_config_module) -> dict:
    """(arch, pair) -> a student folder: models_v0 for single texts, tiny pair students trained here
    (one epoch: parity needs trained weights, not good ones), and a BOW with a hidden layer."""
    tmp = tmp_path_factory.mktemp("export_models")
    found = {(arch, False): FIXTURES / arch for arch in ("bow", "cnn", "lstm")}

    def pairs(n: int, seed: int) -> list[tuple[str, str, str]]:  # label 1: both texts have the same sentiment
        rows = sentiment_module(2 * n, seed=seed)
        partners = rows[n:]
        random.Random(seed).shuffle(partners)
        return [(a, b, str(int(la == lb))) for (la, a), (lb, b) in zip(rows[:n], partners)]

    pair_files = {
        k: write_tsv_module(tmp / f"pair_{k}.tsv", pairs(n, s), header=("text_a", "text_b", "label"))
        for k, n, s in (("train", 120, 1), ("dev", 20, 2), ("test", 20, 3))
    }
    for arch in ("bow", "cnn", "lstm"):
        train_student(student_config_module(pair_files, tmp / "pair", arch, epochs=1))
        found[(arch, True)] = tmp / "pair" / arch
    files = {
        k: write_tsv_module(tmp / f"{k}.tsv", sentiment_module(n, seed=s))
        for k, n, s in (("train", 120, 1), ("dev", 20, 2), ("test", 20, 3))
    }
    cfg = student_config_module(files, tmp / "hidden", "bow", epochs=1)
    cfg["student"]["model"]["hidden"] = 16
    train_student(cfg)
    found[("bow-hidden", False)] = tmp / "hidden" / "bow"
    cfg = student_config_module(files, tmp / "linear", "bow", epochs=1)
    cfg["student"]["model"] = {}  # the default single-text BOW: a linear TF-IDF bag (5,000 buckets, not
    # the default million: the export is the same graph, and solving a million-bucket bag takes ~8 s)
    train_student(cfg)
    found[("bow-linear", False)] = tmp / "linear" / "bow"
    cfg = student_config_module(pair_files, tmp / "pair-linear", "bow", epochs=1)
    cfg["student"]["model"] = {}  # the default pair BOW: a linear bag of what the texts share and what not
    train_student(cfg)
    found[("bow-linear", True)] = tmp / "pair-linear" / "bow"
    return found


def _texts(sentiment) -> list[str]:
    return [t for _, t in sentiment(60, seed=7)] + EDGE


CASES = [
    ("bow", False),
    ("cnn", False),
    ("lstm", False),
    ("bow-hidden", False),
    ("bow-linear", False),
    ("bow", True),
    ("bow-linear", True),
    ("cnn", True),
    ("lstm", True),
]


@pytest.mark.parametrize("arch,pair", CASES, ids=[f"{a}-{'pairs' if p else 'texts'}" for a, p in CASES])
def test_onnx_probabilities_equal_torch_within_1e_5(arch, pair, models, tmp_path, sentiment):
    folder = models[(arch, pair)]
    info = export_folder(folder, tmp_path / "onnx", command="datadistill export (test)")
    torch_p, onnx_p = Predictor(folder), OnnxPredictor(tmp_path / "onnx")
    texts = _texts(sentiment)
    if pair:
        texts_b = texts[5:] + texts[:5]
        want, got = torch_p.predict_proba(texts, texts_b), onnx_p.predict_proba(texts, texts_b)
        one = onnx_p.predict_proba(texts[:1], texts_b[:1])  # batch of one
        assert np.abs(one - want[:1]).max() <= 1e-5
    else:
        want, got = torch_p.predict_proba(texts), onnx_p.predict_proba(texts)
        for i in (0, len(texts) - 7, len(texts) - 5):  # one text: 1 token, empty, cut at max_len
            assert np.abs(onnx_p.predict_proba([texts[i]]) - want[i]).max() <= 1e-5
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-5
    assert onnx_p.labels == torch_p.labels and onnx_p.pair == pair and info["pair"] == pair
    assert info["probe_max_abs_logit_diff"] <= 1e-4 and info["command"] == "datadistill export (test)"
    inputs = {"ids_a", "len_a", "ngr_a"} | ({"ids_b", "len_b", "ngr_b"} if pair else set())
    if arch == "bow-linear":  # a TF-IDF bag normalises by its weights, not by the length
        inputs -= {"len_a", "len_b"}
    assert set(info["inputs"]) == inputs


def test_export_folder_is_self_contained_and_found_by_load_model(models, tmp_path, capsys):
    src = models[("cnn", False)]
    out = tmp_path / "exports" / "cnn"
    assert main(["export", "--model", str(src), "--out", str(out)]) == 0
    assert "export: cnn -> " in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"config.json", "vocab.txt", "labels.json", "model.onnx", "export.json"}
    for name in ("config.json", "vocab.txt", "labels.json"):
        assert (out / name).read_bytes() == (src / name).read_bytes()
    info = json.loads((out / "export.json").read_text())
    assert info["command"] == f"datadistill export --model {src} --out {out}"
    assert info["format"] == "onnx" and info["quantize"] is None and info["arch"] == "cnn"
    assert detect_backend(out) == "onnx" and detect_backend(src) == "torch"
    model = load_model(out)  # the Python API picks onnxruntime for an export folder
    assert isinstance(model, OnnxPredictor)
    expected = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
    assert model.predict(expected["texts"]) == expected["models"]["cnn"]["labels"]
    assert np.allclose(model.predict_proba(expected["texts"]), expected["models"]["cnn"]["probs"], atol=1e-5)
    # `predict` reads an export folder too
    r = subprocess.run(
        [sys.executable, "-m", "datadistill.cli", "predict", "--model", str(out)],
        input="酒店很好\n\n好\n",
        capture_output=True,
        text=True,
    )
    lines = r.stdout.split("\n")
    assert r.returncode == 0 and lines[0].startswith(expected["models"]["cnn"]["labels"][0] + "\t") and lines[1] == ""


def test_int8_export_is_smaller_and_close(models, tmp_path, sentiment):
    folder = models[("bow-hidden", False)]
    export_folder(folder, tmp_path / "fp32")
    info = export_folder(folder, tmp_path / "int8", quantize="int8")
    assert info["quantize"] == "int8"
    size = lambda name: (tmp_path / name / "model.onnx").stat().st_size  # noqa: E731
    assert size("int8") < size("fp32") / 2
    texts = _texts(sentiment)
    diff = np.abs(OnnxPredictor(tmp_path / "int8").predict_proba(texts) - Predictor(folder).predict_proba(texts))
    assert diff.max() < 0.05


def test_the_onnx_predictor_never_imports_torch(models, tmp_path):
    export_folder(models[("lstm", True)], tmp_path / "lstm")
    code = (
        "import sys\n"
        "import datadistill\n"
        "from datadistill.onnx_predict import OnnxPredictor\n"
        f"p = OnnxPredictor({str(tmp_path / 'lstm')!r})\n"
        "probs = p.predict_proba(['酒店很好', '好'], ['房间很好', '差'])\n"
        f"labels = datadistill.load_model({str(tmp_path / 'lstm')!r}).predict(['酒店很好'], ['房间很好'])\n"
        "print(probs.shape, len(labels), sorted(m for m in ('torch', 'safetensors') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(2, 2) 1 []"


def test_bad_exports_get_one_line(models, tmp_path, capsys):
    src = models[("bow", False)]
    cases = [
        (["--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], "nope: model folder does not exist"),
        (["--model", str(src), "--out", str(src)], f"--out {src}: is, or lies in, a model folder; name a new folder"),
        (["--model", str(src), "--out", str(src / "sub")], "sub: is, or lies in, a model folder"),
        (["--model", str(src), "--out", ""], "--out is empty: name the export folder to write"),
        (
            ["--model", str(src), "--out", str(tmp_path / "o"), "--opset", "5"],
            "--opset 5: this torch exports opsets 11 to",
        ),
    ]
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "config.json").write_text('{"mine": 1}')
    cases.append(
        (["--model", str(src), "--out", str(tmp_path / "project")], "holds files that are not a datadistill export")
    )
    (tmp_path / "file").write_text("x")
    cases.append(
        (["--model", str(src), "--out", str(tmp_path / "file")], "file: is a file; it names the export folder")
    )
    for argv, message in cases:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("datadistill export: error: ") and message in err, err
    assert (tmp_path / "project" / "config.json").read_text() == '{"mine": 1}' and not (tmp_path / "o").exists()
    with pytest.raises(
        ModelFolderError,
        match=r"model.onnx: missing \(an export folder holds config.json, vocab.txt, labels.json, model.onnx\)",
    ):
        OnnxPredictor(src)


@pytest.mark.slow
@pytest.mark.parametrize(
    "blocked,argv,message",
    [
        (
            "onnx",
            ["export", "--model", "M", "--out", "O"],
            "exporting to ONNX needs the 'onnx' package, which is not installed: pip install 'datadistill[export]'",
        ),
        (
            "onnxruntime",
            ["predict", "--model", "E"],
            "predicting with an exported model needs the 'onnxruntime' package, which is not installed: pip install 'datadistill[onnx]'",
        ),
        (
            "fastapi",
            ["serve", "--model", "E"],
            "datadistill serve needs the 'fastapi' package, which is not installed: pip install 'datadistill[serve]'",
        ),
    ],
)
def test_a_missing_extra_is_named_with_its_install_line(blocked, argv, message, models, tmp_path):
    export_folder(models[("bow", False)], tmp_path / "E")
    argv = [
        {"M": str(models[("bow", False)]), "O": str(tmp_path / "O"), "E": str(tmp_path / "E")}.get(a, a) for a in argv
    ]
    code = f"import sys\nsys.modules[{blocked!r}] = None\nfrom datadistill.cli import main\nsys.exit(main({argv!r}))\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, input="好\n")
    assert r.returncode == 2 and r.stderr.strip() == f"datadistill {argv[0]}: error: {message}", r.stderr


def test_two_exports_into_one_folder_never_mix_and_a_second_at_once_is_refused(models, tmp_path, capsys):
    from datadistill.lock import exclusive

    out = tmp_path / "export"
    assert main(["export", "--model", str(models[("bow", False)]), "--out", str(out), "-q"]) == 0
    assert main(["export", "--model", str(models[("bow", True)]), "--out", str(out), "-q"]) == 0  # replaces it
    p = OnnxPredictor(out)
    assert p.pair and p.inputs[:3] == ["ids_a", "len_a", "ngr_a"] and "ids_b" in p.inputs
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith(".") and not f.name.endswith(".lock")) == []
    capsys.readouterr()
    with exclusive(out, "a test"):
        assert main(["export", "--model", str(models[("bow", False)]), "--out", str(out), "-q"]) == 2
    assert "another datadistill process (PID" in capsys.readouterr().err and OnnxPredictor(out).pair


def test_a_pair_model_refuses_a_line_that_is_not_one_pair(models, monkeypatch, capsys):
    import io

    pair = str(models[("bow", True)])
    stdin = io.TextIOWrapper(io.BytesIO("酒店很好\t房间很好\n\n没有制表符\n".encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["predict", "--model", pair]) == 2
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and out.splitlines()[1] == ""  # the lines before it are answered
    assert "input line 3: this model reads text pairs, one `text_a<TAB>text_b` per line; the line has 0 tabs" in err
