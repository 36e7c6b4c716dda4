from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the transformers teacher needs 'transformers'")

from datadistill.cli import main  # noqa: E402
from datadistill.data import read_examples  # noqa: E402
from datadistill.teacher import TeacherError  # noqa: E402
from datadistill.data.cache import score_cache_name  # noqa: E402
from datadistill.teacher.hf import HFTeacher, TeacherTrainConfig, _load_pretrained  # noqa: E402
from datadistill.data.labels import LabelMap  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory, sentiment_module, write_tsv_module):
    synthetic_sentiment, write_tsv = sentiment_module, write_tsv_module
    tmp = tmp_path_factory.mktemp("hf")
    return {
        "train": write_tsv(tmp / "train.tsv", synthetic_sentiment(240, seed=1)),
        "dev": write_tsv(tmp / "dev.tsv", synthetic_sentiment(60, seed=2)),
        "tmp": tmp,
    }


# the quick suite (-m "not slow") fine-tunes one of them; the others are slow
ARCHS = [("bert", "cls"), *(pytest.param(p, marks=pytest.mark.slow) for p in [("ernie", "cls"), ("bert", "mean")])]


@pytest.fixture(scope="module", params=ARCHS, ids=lambda p: "-".join(p))
def teacher(request, files, tiny_checkpoint_module):
    """A teacher fine-tuned through the CLI from a 2-layer BERT or ERNIE, with each pooling."""
    kind, pooling = request.param
    tmp = files["tmp"] / f"{kind}-{pooling}"
    ckpt = tiny_checkpoint_module(tmp / "base", kind)
    out = tmp / "teacher"
    settings = {"epochs": 6, "patience": 5, "lr": 2e-3, "batch_size": 16, "pooling": pooling, "max_len": 64}
    argv = ["teacher", "finetune", "--model", str(ckpt), "--train", str(files["train"]), "--dev", str(files["dev"])]
    argv += ["--out", str(out), "--quiet"] + [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    assert main(argv) == 0
    return {"out": out, "tmp": tmp, "pooling": pooling, "dev": read_examples(files["dev"])}


@pytest.mark.slow
def test_fine_tuned_teacher_learns_the_task_and_saves_its_recipe(teacher):
    meta = json.loads((teacher["out"] / "teacher.json").read_text())
    assert meta["labels"] == ["0", "1"] and meta["pooling"] == teacher["pooling"]
    dev = teacher["dev"]
    sc = HFTeacher(teacher["out"]).score([e.text_a for e in dev])
    assert np.mean([p == e.label for p, e in zip(sc.labels, dev)]) >= 0.9
    assert np.allclose(sc.probs.sum(1), 1.0, atol=1e-5) and sc.logits.shape == (60, 2)


def test_reloading_a_teacher_gives_the_same_scores(teacher):
    texts = [e.text_a for e in teacher["dev"]]
    assert np.allclose(HFTeacher(teacher["out"]).logits(texts), HFTeacher(teacher["out"]).logits(texts), atol=1e-5)


def test_a_copied_teacher_is_the_same_teacher_and_changed_weights_are_not(teacher):
    """Identity by content: a copy keeps its score cache; other weights do not."""
    out = teacher["out"]
    copied = HFTeacher(shutil.copytree(out, teacher["tmp"] / "copied", dirs_exist_ok=True))
    assert copied.describe() == HFTeacher(out).describe()
    with open(teacher["tmp"] / "copied" / "model.safetensors", "ab") as f:
        f.write(b"\0")
    assert copied.describe() != HFTeacher(out).describe()  # describe() reads the files' bytes now


def test_bf16_scores_agree_with_fp32_and_are_another_identity(teacher):
    """bf16 is what 'auto' picks on a GPU or a CPU with native bf16: same labels, close probabilities,
    and another identity, so fp32 and bf16 scores never share a cache."""
    out, texts = teacher["out"], [e.text_a for e in teacher["dev"]]
    fp32, bf16 = HFTeacher(out, precision="fp32"), HFTeacher(out, precision="bf16")
    sc32, sc16 = fp32.score(texts), bf16.score(texts)
    assert np.mean(np.array(sc32.labels) == np.array(sc16.labels)) >= 0.95
    assert np.abs(sc32.probs - sc16.probs).max() < 0.05
    assert bf16.describe() == fp32.describe() + ":bf16"
    (out / score_cache_name("bf16")).write_text("# a cache\n")
    assert HFTeacher(out, precision="fp32").describe() == fp32.describe()  # caches are not model files


@pytest.mark.slow
def test_teacher_predict_and_label_through_the_cli(teacher, write_tsv):
    out, tmp, dev = teacher["out"], teacher["tmp"], teacher["dev"]
    teacher = HFTeacher(out)
    sc = teacher.score([e.text_a for e in dev])
    # the seed's classic mode: stdin text -> text<TAB>label<TAB>probabilities, one answer per input line
    # (a blank line is answered by a blank line); one process, since each start imports torch
    texts = [e.text_a for e in dev[:4]]
    r = subprocess.run(
        [sys.executable, "-m", "datadistill.cli", "teacher", "predict", "--model", str(out)],
        input="".join(t + "\n" for t in texts) + f"\n{texts[1]}\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert r.returncode == 0, r.stderr
    answers = r.stdout.split("\n")
    assert len(answers) == 7 and answers[4] == "" and answers[5] == answers[1] and answers[6] == ""
    lines = [line.split("\t") for line in answers[:4]]
    assert [(x[0], x[1]) for x in lines] == list(zip(texts, sc.labels[:4]))
    assert np.allclose([[float(v) for v in x[2].split()] for x in lines], sc.probs[:4], atol=1e-5)

    aug_texts = [texts[0][:3] + "[UNK]" + texts[0][4:], texts[1]]
    aug = write_tsv(tmp / "aug.tsv", [(t,) for t in aug_texts], header=("text_a",))
    part1 = tmp / "part.1"
    assert main(["label", "--model", str(out), "--input", str(aug), "--output", str(part1), "--quiet"]) == 0
    rows = read_examples(part1)
    assert [r.text_a for r in rows] == aug_texts  # the student sees what augmentation wrote ...
    # ... while the teacher saw its own unknown token there
    expect = teacher.score([t.replace("[UNK]", teacher.unk_token) for t in aug_texts])
    assert [r.label for r in rows] == expect.labels
    assert np.allclose([r.logits for r in rows], expect.logits, atol=1e-4) and len(rows[0].probs) == 2


def test_unknown_model_offline_error_suggests_local_path_or_bundled():
    with pytest.raises(TeacherError) as e:
        _load_pretrained("nghuyong/ernie-3.0-base-zh-does-not-exist", 2, LabelMap(["0", "1"]), "cls")
    msg = str(e.value)
    assert msg.startswith("cannot load teacher model 'nghuyong/ernie-3.0-base-zh-does-not-exist' offline")
    assert "local folder" in msg and "bundled:multilingual-e5-small" in msg


def test_auto_precision_is_bf16_for_inference_on_a_gpu_or_a_cpu_with_native_bf16(monkeypatch):
    from datadistill.teacher import hf

    cpu = torch.device("cpu")
    assert isinstance(hf.cpu_has_native_bf16(), bool)  # read from /proc/cpuinfo; False where it is missing
    for native, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(hf, "cpu_has_native_bf16", lambda native=native: native)
        assert hf.resolve_precision(cpu, "auto", inference=True) == want
        assert hf.resolve_precision(cpu, "auto", inference=False) == "fp32"  # training on a CPU stays fp32
        assert hf.resolve_precision(cpu, "fp16", inference=True) == "fp16"  # an explicit choice is kept


def test_config_rejects_unknown_pooling():
    from datadistill.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="pooling must be 'auto', 'cls' or 'mean'"):
        from_dict(TeacherTrainConfig, {"model": "x", "pooling": "max"})


def test_finetune_from_a_teacher_config_file(files, tmp_path, tiny_checkpoint):
    ckpt = tiny_checkpoint(tmp_path / "base", "bert")
    cfg = tmp_path / "teacher.json"
    cfg.write_text(
        json.dumps(
            {
                "data": {"train": str(files["train"]), "dev": str(files["dev"])},
                "teacher": {"model": str(ckpt), "epochs": 1, "lr": 2e-3, "max_len": 32},
                "output": str(tmp_path / "out"),
            }
        )
    )
    assert main(["teacher", "finetune", "--config", str(cfg), "--quiet", "--set", "max_steps=2"]) == 0
    assert json.loads((tmp_path / "out" / "teacher.json").read_text())["max_len"] == 32
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"teacher": {"model": str(ckpt)}, "students": {}}))
    assert main(["teacher", "finetune", "--config", str(bad)]) == 2


@pytest.mark.slow
def test_killed_fine_tuning_resumes_at_its_last_evaluation_and_ends_as_if_never_stopped(
    files, tmp_path, tiny_checkpoint
):
    """The teacher is the longest step (40+ min on a CPU): a kill must not throw that work away."""
    from datadistill.teacher.hf import CHECKPOINT, TEACHER_JSON

    ckpt = tiny_checkpoint(tmp_path / "base", "bert")
    args = [
        "teacher",
        "finetune",
        "--model",
        str(ckpt),
        "--train",
        str(files["train"]),
        "--dev",
        str(files["dev"]),
        "--quiet",
        "--set",
        "epochs=12",
        "--set",
        "patience=100",
        "--set",
        "lr=2e-3",
        "--set",
        "batch_size=16",
        "--set",
        "max_len=64",
        "--set",
        "eval_every=5",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    r = subprocess.run(
        [sys.executable, "-m", "datadistill.cli", *args, "--out", str(whole)], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    assert not (whole / CHECKPOINT).exists()  # removed once the teacher is saved

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "datadistill.cli", *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )

    def saved_step() -> int:  # the file is renamed into place, so a read sees a whole one
        try:
            return json.loads(torch.load(out / CHECKPOINT, weights_only=True)["state"])["step"]
        except (FileNotFoundError, RuntimeError, EOFError):
            return 0

    deadline = time.time() + 120
    while time.time() < deadline and saved_step() < 20:  # 15 steps per epoch: resume inside epoch 2 or later,
        time.sleep(0.01)  # so the epoch's batch order must be restored too
    time.sleep(0.3)  # a few steps past the checkpoint: they are redone
    proc.kill()
    proc.wait()
    assert (out / CHECKPOINT).exists() and not (out / TEACHER_JSON).exists(), "killed too late to test resuming"
    r2 = subprocess.run(
        [sys.executable, "-m", "datadistill.cli", *args, "--out", str(out)], capture_output=True, text=True, env=env
    )
    assert r2.returncode == 0, r2.stderr
    assert "resuming teacher fine-tuning at step " in r2.stderr and "step 5 epoch 1" not in r2.stderr
    assert int(r2.stderr.split("resuming teacher fine-tuning at step ")[1].split()[0]) >= 20
    # the same dev curve after the resume point, and the same weights at the end
    tail = [ln for ln in r2.stderr.splitlines() if ln.startswith("step ")]
    assert tail and all(ln in r.stderr for ln in tail)
    assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    assert not (out / CHECKPOINT).exists()
