"""Progress without a terminal: long steps (the teacher's fine-tuning included) log how far they are."""

from __future__ import annotations

import pytest

from datadistill import log as ddlog


def test_progress_without_a_bar_logs_done_total_rate_and_time_left(caplog):
    caplog.set_level("INFO", logger="datadistill")
    p = ddlog.Progress(10, "teacher fine-tuning", "step", bar=False, every=0)
    p.update(4, loss="0.5000")
    p.update(6)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("teacher fine-tuning: 4 of 10 steps (40 %), ") and " left; loss 0.5000" in lines[0]
    assert lines[1].startswith("teacher fine-tuning: 10 of 10 steps (100 %)") and " left" not in lines[1]


def test_the_rate_and_time_left_follow_the_last_lines_not_a_fast_start(caplog, monkeypatch):
    """A label run reading half its rows from the score cache first must not promise a tenth of the time."""
    caplog.set_level("INFO", logger="datadistill")
    clock = iter([0.0] + [0.2 * k for k in range(1, 6)] + [1.0 + 10 * k for k in range(1, 11)])
    monkeypatch.setattr(ddlog.time, "perf_counter", lambda: next(clock))
    p = ddlog.Progress(1000, "label", "row", bar=False, every=0)
    for _ in range(5):
        p.update(100)  # 500 rows in a second: cache hits
    for _ in range(10):
        p.update(10)  # then 1 row a second: the teacher
    lines = [r.getMessage() for r in caplog.records]
    assert lines[4].startswith("label: 500 of 1,000 rows (50 %), 500.0 rows/s, about 1 s left")
    assert lines[-1] == "label: 600 of 1,000 rows (60 %), 1.0 rows/s, about 7 min left"  # 400 rows at 1/s


def test_the_teacher_fine_tuning_logs_progress_when_output_is_not_a_terminal(files_for_teacher, monkeypatch, caplog):
    from datadistill.data.io import read_splits
    from datadistill.teacher.hf import TeacherTrainConfig, finetune

    monkeypatch.setattr(ddlog, "PROGRESS_EVERY", 0.0)
    caplog.set_level("INFO", logger="datadistill")
    train, dev, _, lm = read_splits(files_for_teacher["train"], files_for_teacher["dev"])
    cfg = TeacherTrainConfig(model=str(files_for_teacher["ckpt"]), epochs=1, max_len=32, batch_size=32, max_steps=3)
    finetune(cfg, train, dev, files_for_teacher["out"], lm, progress=False)
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("teacher fine-tuning: ")]
    assert [s.split(" (")[0] for s in steps] == [f"teacher fine-tuning: {n} of 3 steps" for n in (1, 2, 3)]
    assert "steps/s" in steps[0] and "loss " in steps[0]


@pytest.fixture
def files_for_teacher(tmp_path, sentiment, write_tsv, tiny_checkpoint):
    pytest.importorskip("transformers")
    return {
        "train": write_tsv(tmp_path / "train.tsv", sentiment(96, seed=1)),
        "dev": write_tsv(tmp_path / "dev.tsv", sentiment(16, seed=2)),
        "ckpt": tiny_checkpoint(tmp_path / "base", "bert"),
        "out": tmp_path / "teacher",
    }
