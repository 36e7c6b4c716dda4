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


@pytest.mark.parametrize(
    "arch, keep, kill_at",
    [
        ("bow", "best", 5),
        pytest.param("lstm", "best", 5, marks=pytest.mark.slow),
        ("bow", "average", 8),
        pytest.param("bow", "last", 5, marks=pytest.mark.slow),  # its checkpoints hold no second weights
    ],
)
def test_killed_training_resumes_from_its_checkpoint_and_ends_as_if_never_stopped(
    senti_files, tmp_path, arch, keep, kill_at, student_config
):
    """Distilling an LSTM on ~100k teacher-labelled rows takes most of an hour on a CPU: a kill must
    not throw it away. Dropout (torch RNG), the epoch's batch order (numpy RNG) and AdamW all matter;
    under keep "average", so does the mean of the weights so far."""
    from datadistill.student import CHECKPOINT, load_run_config, train_student

    def cfg(out):
        path = tmp_path / f"{out}.json"
        path.write_text(json.dumps(student_config(senti_files, tmp_path, arch, epochs=3, eval_every=7, keep=keep)))
        return load_run_config(path, [f"output={tmp_path / out}"])

    whole = train_student(cfg("whole"), progress=False)
    assert not (tmp_path / "whole" / CHECKPOINT).exists()

    # 25 steps per epoch, evaluations at 7, 14, 21, 28, 35, 42, 49, 56: the kill at the evaluation of
    # step 35 resumes mid-epoch 2; that of step 56 resumes with two weights averaged (42 and 49)
    with _logs(kill_at=kill_at), pytest.raises(Killed):
        train_student(cfg("killed"), progress=False)
    assert (tmp_path / "killed" / CHECKPOINT).exists() and not (tmp_path / "killed" / "model.safetensors").exists()
    with _logs() as seen:
        resumed = train_student(cfg("killed"), progress=False)
    at = 7 * (kill_at - 1)
    assert any(m.startswith(f"resuming student training at step {at} of 75 from ") for m in seen), seen
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
        f"{tmp_path / 'bow' / CHECKPOINT} belongs to another student training run (settings, data or number of processes differ); "
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


def _scripted_fit(keep: str, dev: list[float], patience: int = 2):
    """10 steps of one weight pulled towards 10, evaluated at steps 2, 4, 6, 8, 10 with scripted dev
    accuracies; returns the fit's result, the weight at each evaluation and the weight returned."""
    from torch import nn

    from datadistill.train import TrainConfig, fit

    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    seen: list[float] = []

    def batch_loss(ids, net):
        return ((net.weight - 10.0) ** 2).sum(), None

    def evaluate() -> float:
        seen.append(model.weight.item())
        return dev[len(seen) - 1]

    cfg = TrainConfig(epochs=1, batch_size=1, lr=0.5, warmup=0.0, clip=0.0, patience=patience, eval_every=2, keep=keep)
    cfg.validate()
    result = fit(model, batch_loss, evaluate, np.ones(10, dtype=int), cfg, progress=False)
    return result, seen, model.weight.item()


def test_keep_best_returns_the_best_dev_weights_and_stops_after_patience():
    result, seen, w = _scripted_fit("best", [0.5, 0.9, 0.6, 0.7, 0.8])
    assert result.steps == 8 and result.best_step == 4 and result.best_dev_accuracy == 0.9
    assert len(seen) == 4 and w == seen[1]


def test_keep_last_runs_the_whole_schedule_and_returns_its_last_weights():
    result, seen, w = _scripted_fit("last", [0.5, 0.9, 0.6, 0.7, 0.8])
    assert result.steps == 10 and result.best_step == 10 and result.best_dev_accuracy == 0.8
    assert len(seen) == 5 and w == seen[-1] and seen[0] < seen[-1]


def test_keep_average_returns_the_mean_of_the_second_half_evaluations_and_its_own_dev_accuracy():
    # evaluations at steps 6, 8 and 10 lie past half of the 10 steps; a sixth evaluation scores the mean
    result, seen, w = _scripted_fit("average", [0.5, 0.9, 0.6, 0.7, 0.8, 0.75])
    assert result.steps == 10 and len(seen) == 6
    assert w == pytest.approx(sum(seen[2:5]) / 3, rel=1e-6) and seen[5] == w
    assert result.best_dev_accuracy == 0.75 and result.best_step == 10


def test_keep_is_checked():
    from datadistill.config import ConfigError
    from datadistill.train import TrainConfig

    with pytest.raises(ConfigError) as e:
        TrainConfig(keep="final").validate()
    assert str(e.value) == "keep must be one of best, last, average, got 'final'"


@pytest.mark.parametrize("by_length", [True, False])
def test_the_schedule_counts_exactly_the_batches_every_rank_steps_through(by_length):
    """Under torchrun a batch with fewer rows than ranks is dropped; the schedule's length must leave it
    out, or the learning rate ends above zero and the last step is never the counted one."""
    from datadistill.train import _batches, epoch_steps

    rng = np.random.default_rng(0)
    for rows in (1, 15, 16, 17, 401, 1000, 3201):
        for batch_size in (1, 7, 16, 64):
            for world in (1, 2, 3, 8):
                drawn = _batches(rng.integers(1, 50, rows), batch_size, rng, by_length)
                stepped = [b for b in drawn if len(b) >= world]
                assert epoch_steps(rows, batch_size, world) == len(stepped), (rows, batch_size, world)


@pytest.mark.parametrize(
    "rows,batch_size,message",
    [
        (10, 2, "batch_size 2 is smaller than the 4 torchrun processes: each takes a share of every batch; "
         "set batch_size to at least 4"),
        (3, 8, "3 training rows are fewer than the 4 torchrun processes: each needs a row of every batch; "
         "run fewer processes"),
    ],
)  # fmt: skip
def test_torchrun_runs_that_would_train_nothing_are_refused_by_name(rows, batch_size, message):
    from torch import nn

    from datadistill.config import ConfigError
    from datadistill.distributed import World
    from datadistill.train import TrainConfig, fit

    cfg = TrainConfig(epochs=1, batch_size=batch_size)
    with pytest.raises(ConfigError) as e:
        fit(nn.Linear(1, 1), None, None, np.ones(rows, dtype=int), cfg, progress=False, world=World(rank=0, size=4))
    assert str(e.value) == message
