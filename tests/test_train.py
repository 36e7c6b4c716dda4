from __future__ import annotations

import numpy as np
import pytest

from datadistill.train import Row, epoch_indices
from datadistill import train_student


def small_config(files, tmp_path, arch, **train):
    model = {"bow": {"emb_dim": 32, "hidden": 0}, "cnn": {"emb_dim": 32, "filters": 32, "widths": [2, 3]},
             "lstm": {"emb_dim": 32, "hidden": 32}}[arch]
    return {"data": {"train": str(files["train"]), "dev": str(files["dev"]), "test": str(files["test"])},
            "student": {"arch": arch, "features": {"tokenizer": "char", "ngrams": [2] if arch != "bow" else [2, 3],
                                                   "ngram_buckets": 5000}, "model": model},
            "train": {"epochs": 6, "batch_size": 16, "lr": 0.005, "patience": 10, **train},
            "output": str(tmp_path / arch)}


@pytest.mark.parametrize("arch", ["bow", "cnn", "lstm"])
def test_fixture_task_is_learned(senti_files, tmp_path, arch):
    m = train_student(small_config(senti_files, tmp_path, arch))
    assert m["test"]["accuracy"] >= 0.9 and m["dev"]["accuracy"] >= 0.9
    assert (tmp_path / arch / "model.safetensors").exists()


def test_training_is_seeded(senti_files, tmp_path):
    cfg = small_config(senti_files, tmp_path, "bow", epochs=1)
    a = train_student(cfg)["history"]
    b = train_student(cfg)["history"]
    assert a == b


def test_part0_share_repeats_gold_rows():
    rows = [Row(a=np.zeros(1), b=None, label=0, gold=True)] * 10 + \
           [Row(a=np.zeros(1), b=None, label=0, probs_T=[1.0, 0.0], gold=False)] * 90
    idx = epoch_indices(rows, 0.25)
    gold_share = np.isin(idx, np.arange(10)).mean()
    assert 0.25 <= gold_share < 0.30 and (idx >= 10).sum() == 90
    assert len(epoch_indices(rows, 0.0)) == 100
