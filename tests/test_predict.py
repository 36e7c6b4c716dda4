from __future__ import annotations

import io
import json
from pathlib import Path
import os
import subprocess
import sys

import numpy as np
import pytest

from datadistill import load_model, train_student
from datadistill.cli import main
from datadistill.modelio import ModelFolderError
from datadistill.predict import Predictor


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, sentiment_module, write_tsv_module, student_config_module):
    synthetic_sentiment, write_tsv, small_config = sentiment_module, write_tsv_module, student_config_module

    tmp = tmp_path_factory.mktemp("m")
    files = {
        k: write_tsv(tmp / f"{k}.tsv", synthetic_sentiment(n, seed=s))
        for k, n, s in (("train", 300, 1), ("dev", 60, 2), ("test", 60, 3))
    }
    cfg = small_config(files, tmp, "cnn", epochs=3)
    train_student(cfg)
    return tmp / "cnn"


@pytest.fixture
def TEXTS(sentiment):
    return [t for _, t in sentiment(40, seed=9)] + ["好", "一个很长很长的句子" * 20]


def test_folder_is_self_contained(model_dir):
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "vocab.txt", "labels.json", "model.safetensors", "metrics.json"} <= names
    config = json.loads((model_dir / "config.json").read_text())
    assert config["arch"] == "cnn" and config["features"]["tokenizer"] == "char" and "command" in config


def test_save_load_same_predictions_and_batching_agrees(model_dir, tmp_path, TEXTS):
    p = Predictor(model_dir)
    batched = p.predict_proba(TEXTS)
    one_by_one = np.stack([p.predict_proba([t])[0] for t in TEXTS])
    assert np.allclose(batched, one_by_one, atol=1e-5)
    assert np.allclose(batched.sum(1), 1.0, atol=1e-6)
    # a copy of the folder elsewhere predicts the same
    import shutil

    shutil.copytree(model_dir, tmp_path / "copy")
    assert np.allclose(load_model(tmp_path / "copy").predict_proba(TEXTS), batched, atol=1e-6)
    assert p.predict(TEXTS[:2]) == [p.labels[i] for i in batched[:2].argmax(1)]


@pytest.mark.parametrize(
    "damage,message",
    [
        (
            "rm model.safetensors",
            "model.safetensors: missing (a model folder holds config.json, vocab.txt, labels.json, model.safetensors)",
        ),
        ("truncate model.safetensors", "model.safetensors: cannot load weights"),
        ("garble config.json", "config.json: cannot read model config"),
        ("garble labels.json", "labels.json: cannot read label map"),
    ],
)
def test_damaged_folder_errors_name_the_file(model_dir, tmp_path, damage, message):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(model_dir, d)
    verb, name = damage.split()
    if verb == "rm":
        (d / name).unlink()
    elif verb == "truncate":
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: len(data) // 2])
    else:
        (d / name).write_text("{not json")
    with pytest.raises(ModelFolderError) as e:
        Predictor(d)
    assert str(e.value).startswith(str(d / message.split(":")[0]) + ":" + message.split(":", 1)[1][:30])


@pytest.mark.slow
def test_predict_cli_answers_line_by_line(model_dir, TEXTS):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "datadistill.cli", "predict", "--model", str(model_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
    )
    expected = Predictor(model_dir).predict_proba(TEXTS[:3])
    for text, probs in zip(TEXTS[:3], expected):
        proc.stdin.write(text + "\n")
        proc.stdin.flush()
        label, p = proc.stdout.readline().rstrip("\n").split("\t")  # answered before the next line is sent
        assert np.allclose([float(x) for x in p.split()], probs, atol=1e-5)
        assert label in ("0", "1")
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


def test_predict_cli_input_file_and_eval(model_dir, tmp_path, capsys, TEXTS):
    f = tmp_path / "in.txt"
    f.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert main(["predict", "--model", str(model_dir), "--input", str(f)]) == 0
    out = capsys.readouterr().out.strip().split("\n")
    assert len(out) == len(TEXTS)
    assert [line.split("\t")[0] for line in out] == Predictor(model_dir).predict(TEXTS)
    assert (
        main(
            [
                "eval",
                "--model",
                str(model_dir),
                "--data",
                str(model_dir.parent / "test.tsv"),
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("accuracy ")
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 60
    assert main(["predict", "--model", str(tmp_path / "nope")]) == 2
    assert "model folder does not exist" in capsys.readouterr().err


def test_pair_student_trains_saves_and_predicts(tmp_path, words, write_tsv, student_config, capsys):
    import random

    POS_WORDS, TOPICS, small_config = words["pos"], words["topics"], student_config

    rng = random.Random(0)

    def rows(n):
        out = []
        for i in range(n):
            a, b = rng.choice(TOPICS), rng.choice(POS_WORDS)
            same = i % 2 == 0
            out.append(
                (a + b, (a + b) if same else rng.choice([t for t in TOPICS if t != a]) + b, "1" if same else "0")
            )
        return out

    files = {
        k: write_tsv(tmp_path / f"{k}.tsv", rows(n), header=("text_a", "text_b", "label"))
        for k, n in (("train", 200), ("dev", 40), ("test", 40))
    }
    cfg = small_config(files, tmp_path, "bow", epochs=2)
    m = train_student(cfg)
    assert m["test"]["n"] == 40
    p = Predictor(tmp_path / "bow")
    assert p.pair and p.predict_proba(["酒店很好"], ["房间很好"]).shape == (1, 2)
    with pytest.raises(ValueError, match="reads text pairs"):
        p.predict(["酒店很好"])
    out = io.StringIO()
    p.stream(io.StringIO("酒店很好\t房间很好\n"), out)
    assert out.getvalue().count("\t") == 1
    single = write_tsv(tmp_path / "single.tsv", [("酒店很好", "1")], header=("text_a", "label"))
    assert main(["predict", "--model", str(tmp_path / "bow"), "--input", str(single)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"datadistill predict: error: {single}: the model in {tmp_path / 'bow'} reads text pairs; this file has no text_b column"
    )


@pytest.mark.parametrize("arch", ["bow", "cnn", "lstm"])
def test_a_model_folder_saved_before_the_consolidation_predicts_as_it_did(arch):
    """tests/fixtures/models_v0 was written by datadistill at commit 19227cf (before the one training
    loop), with the predictions that code made: today's code must load it and give the same answers."""
    fixtures = Path(__file__).parent / "fixtures" / "models_v0"
    expected = json.loads((fixtures / "expected.json").read_text(encoding="utf-8"))
    p = Predictor(fixtures / arch)
    assert p.predict(expected["texts"]) == expected["models"][arch]["labels"]
    assert np.allclose(p.predict_proba(expected["texts"]), expected["models"][arch]["probs"], atol=1e-6)
