from __future__ import annotations

import json
import logging
from contextlib import contextmanager

import numpy as np
import pytest

from datadistill import train_student
from datadistill.student import epoch_indices


@pytest.mark.parametrize("arch", ["bow", "cnn", "lstm"])
def test_fixture_task_is_learned(senti_files, tmp_path, arch, student_config):
    m = train_student(student_config(senti_files, tmp_path, arch))
    assert m["test"]["accuracy"] >= 0.9 and m["dev"]["accuracy"] >= 0.9
    assert (tmp_path / arch / "model.safetensors").exists()


def test_training_is_seeded(senti_files, tmp_path, student_config):
    cfg = student_config(senti_files, tmp_path, "bow", epochs=1)
    a = train_student(cfg)["history"]
    b = train_student(cfg)["history"]
    assert a == b


def test_part0_share_repeats_gold_rows():
    rows = np.array([True] * 10 + [False] * 90)  # 10 gold rows, 90 teacher-labelled
    idx = epoch_indices(rows, 0.25)
    gold_share = np.isin(idx, np.arange(10)).mean()
    assert 0.25 <= gold_share < 0.30 and (idx >= 10).sum() == 90
    assert len(epoch_indices(rows, 0.0)) == 100


class Killed(Exception):
    pass


class _KillAtEval(logging.Handler):
    """Dies at the n-th dev evaluation's log line, like a kill between two checkpoints (n = 0: never)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.seen = n, []

    def emit(self, record: logging.LogRecord) -> None:  # raising here reaches the training loop
        msg = record.getMessage()
        self.seen.append(msg)
        if self.n and msg.startswith("step ") and sum(m.startswith("step ") for m in self.seen) == self.n:
            raise Killed(msg)


@contextmanager
def _logs(kill_at: int = 0):
    handler = _KillAtEval(kill_at)
    logger = logging.getLogger("datadistill")
    logger.addHandler(handler)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("arch", ["bow", "lstm"])
def test_killed_training_resumes_from_its_checkpoint_and_ends_as_if_never_stopped(
    senti_files, tmp_path, arch, student_config
):
    """Distilling an LSTM on ~100k teacher-labelled rows takes most of an hour on a CPU: a kill must
    not throw it away. Dropout (torch RNG), the epoch's batch order (numpy RNG) and AdamW all matter."""
    from datadistill.student import CHECKPOINT, load_run_config, train_student

    def cfg(out):
        path = tmp_path / f"{out}.json"
        path.write_text(json.dumps(student_config(senti_files, tmp_path, arch, epochs=3, eval_every=7)))
        return load_run_config(path, [f"output={tmp_path / out}"])

    whole = train_student(cfg("whole"), progress=False)
    assert not (tmp_path / "whole" / CHECKPOINT).exists()

    # 25 steps per epoch, evaluations at 7, 14, 21, 28, 35: resumes mid-epoch 2
    with _logs(kill_at=5), pytest.raises(Killed):
        train_student(cfg("killed"), progress=False)
    assert (tmp_path / "killed" / CHECKPOINT).exists() and not (tmp_path / "killed" / "model.safetensors").exists()
    with _logs() as seen:
        resumed = train_student(cfg("killed"), progress=False)
    assert any(m.startswith("resuming student training at step 28 of 75 from ") for m in seen), seen
    assert resumed["history"] == whole["history"] and resumed["steps"] == whole["steps"]
    assert (tmp_path / "killed" / "model.safetensors").read_bytes() == (
        tmp_path / "whole" / "model.safetensors"
    ).read_bytes()
    assert not (tmp_path / "killed" / CHECKPOINT).exists()


@pytest.mark.parametrize("change", ["train.lr=0.002", "student.features.ngram_hash=poly"])
def test_a_checkpoint_of_other_data_or_settings_is_not_resumed(senti_files, tmp_path, student_config, change):
    """Settings the rows do not show count too: the rows hold token ids, the n-grams are hashed per batch."""
    from datadistill.student import CHECKPOINT, load_run_config, train_student

    path = tmp_path / "c.json"
    path.write_text(json.dumps(student_config(senti_files, tmp_path, "bow", epochs=2, eval_every=5)))
    with _logs(kill_at=2), pytest.raises(Killed):
        train_student(load_run_config(path), progress=False)
    assert (tmp_path / "bow" / CHECKPOINT).exists()
    with _logs() as seen:
        m = train_student(load_run_config(path, [change]), progress=False)
    assert (
        f"{tmp_path / 'bow' / CHECKPOINT} belongs to another student training run (settings or data differ); "
        "starting over" in seen
    )
    assert m["history"][0]["step"] == 5 and not (tmp_path / "bow" / CHECKPOINT).exists()
    # a torn file (a full disk while saving outside the atomic rename, a copy cut short): start over
    (tmp_path / "bow" / CHECKPOINT).write_bytes(b"PK\x03\x04 not a whole checkpoint")
    with _logs() as seen:
        train_student(load_run_config(path), progress=False)
    assert any(
        m.startswith(f"{tmp_path / 'bow' / CHECKPOINT} cannot be read (") and m.endswith("); starting over")
        for m in seen
    ), seen
