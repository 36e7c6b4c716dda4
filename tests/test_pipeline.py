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
from datadistill.data import read_examples  # noqa: E402
from datadistill.data.io import score_cache_name  # noqa: E402
from datadistill.pipeline import load_config, write_shards  # noqa: E402
from datadistill.teacher.hf import resolve_precision  # noqa: E402
from datadistill.config import ConfigError  # noqa: E402
from tests.conftest import synthetic_sentiment, write_tsv  # noqa: E402
from tests.teacher.test_hf import tiny_checkpoint  # noqa: E402


def tiny_config(tmp_path, **extra):
    files = {k: write_tsv(tmp_path / f"{k}.tsv", synthetic_sentiment(n, seed=s))
             for k, n, s in (("train", 160, 1), ("dev", 40, 2), ("test", 40, 3))}
    unl = tmp_path / "unl.txt"
    unl.write_text("".join(t + "\n" for _, t in synthetic_sentiment(50, seed=4)), encoding="utf-8")
    ckpt = tiny_checkpoint(tmp_path / "base", "bert")
    cfg = {"work": str(tmp_path / "work"),
           "data": {"train": str(files["train"]), "dev": str(files["dev"]), "test": str(files["test"]),
                    "unlabelled": [str(unl)], "unlabelled_ratio": 0.5},
           "teacher": {"model": str(ckpt), "epochs": 5, "lr": 2e-3, "batch_size": 16, "max_len": 64, "patience": 5},
           "augment": {"n_iter": 2, "seed": 1},
           "label": {"batch_size": 16, "chunk_size": 16},
           "students": {"bow": {"arch": "bow", "features": {"tokenizer": "char", "ngrams": [2], "ngram_buckets": 5000},
                                "model": {"emb_dim": 16}}},
           "train": {"epochs": 3, "batch_size": 16, "lr": 0.01},
           "distill": {"loss": "kl"},
           "shards": 3, **extra}
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(cfg))
    return path, cfg


def test_pipeline_runs_writes_the_seed_layout_and_skips_finished_steps(tmp_path, capsys):
    path, cfg = tiny_config(tmp_path)
    assert main(["run", str(path), "--quiet"]) == 0
    work = tmp_path / "work"
    for rel in ("teacher/teacher.json", "student/unsup_train_aug", "student/train/part.0", "student/train/part.1",
                "student/bow/model.safetensors", "student/bow_base/model.safetensors", "report/report.md",
                "report/report.json"):
        assert (work / rel).exists(), rel
    part1 = read_examples(work / "student" / "train" / "part.1")
    assert len(part1) == 50 + 100  # all 50 unlabelled texts, augmented capped at 50 / 0.5
    assert all(len(e.probs) == 2 for e in part1)
    report = json.loads((work / "report" / "report.json").read_text())
    assert [r["model"] for r in report["rows"]] == ["teacher", "bow_base", "bow"]
    assert all(r["texts_per_s"] > 0 and 0 <= r["test_accuracy"] <= 1 for r in report["rows"])
    assert report["rows"][1]["speedup"] > 1
    shards = sorted((work / "student" / "train" / "shards").iterdir())
    sizes = [len(read_examples(s)) for s in shards]
    assert len(shards) == 3 and max(sizes) - min(sizes) <= 1 and sum(sizes) == 160 + 150
    capsys.readouterr()
    assert main(["run", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    for step in ("teacher", "augment", "label", "students", "report"):
        assert f"[{step}] up to date, skipped" in err
    # the data written again with the same bytes and other times (a fresh copy of the data folder): no rerun
    for k in ("train", "dev", "test"):
        f = Path(cfg["data"][k])
        data = f.read_bytes()
        f.unlink()
        f.write_bytes(data)
        os.utime(f, (1e9, 1e9))
    assert main(["run", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert all(f"[{step}] up to date, skipped" in err for step in ("teacher", "augment", "label", "students", "report"))
    assert "[students] training" not in err
    # checkpointing off changes how a step runs, not what it makes: nothing is redone
    assert main(["run", str(path), "--quiet", "--set", "train.checkpoint=false", "--set", "teacher.checkpoint=false"]) == 0
    err = capsys.readouterr().err
    assert all(f"[{step}] up to date, skipped" in err for step in ("teacher", "augment", "label", "students", "report"))
    # a changed student setting reruns the students and the report only
    assert main(["run", str(path), "--quiet", "--set", "train.epochs=2"]) == 0
    err = capsys.readouterr().err
    assert "[label] up to date, skipped" in err and "[students] running" in err and "[report] running" in err
    # a new teacher rewrites part.1: the distilled student retrains, the baseline (part.0 only) does not
    assert main(["run", str(path), "--quiet", "--set", "train.epochs=2", "--set", "teacher.epochs=4"]) == 0
    err = capsys.readouterr().err
    assert "[label] running" in err and "[students] bow_base: up to date" in err
    assert "[students] training bow (part.0 + part.1)" in err


def test_killed_pipeline_resumes_without_redoing_finished_steps(tmp_path):
    path, _ = tiny_config(tmp_path)
    argv = [sys.executable, "-m", "datadistill.cli", "run", str(path), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps = tmp_path / "work" / ".steps"
    deadline = time.time() + 120
    while time.time() < deadline and not (steps / "augment.json").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "work" / "teacher" / ".step.json").exists() and not (steps / "report.json").exists()
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "[teacher] up to date, skipped" in r.stderr and "[augment] up to date, skipped" in r.stderr
    assert (tmp_path / "work" / "report" / "report.md").exists()


def test_runs_naming_one_teacher_dir_share_one_fine_tuning(tmp_path, capsys):
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


def test_config_errors(tmp_path):
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


def _write(tmp_path, cfg):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({k: v for k, v in cfg.items() if k != "studnets"}))
    return p


def test_shards_are_equal_and_hold_every_row(tmp_path):
    p0 = write_tsv(tmp_path / "part.0", synthetic_sentiment(7))
    p1 = tmp_path / "part.1"
    p1.write_text("label\ttext_a\tprobs\tlogits\n" + "".join(f"1\t文本{i}\t0.1 0.9\t\n" for i in range(10)), encoding="utf-8")
    paths = write_shards([p0, p1], tmp_path / "shards", 4)
    rows = [read_examples(p) for p in paths]
    assert sorted(len(r) for r in rows) == [4, 4, 4, 5]
    assert sorted(e.text_a for r in rows for e in r) == sorted([t for _, t in synthetic_sentiment(7)] + [f"文本{i}" for i in range(10)])
