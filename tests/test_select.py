"""Selecting teacher-labelled rows: confidence filtering and class balancing, on rows with known answers."""

from __future__ import annotations

import json

import pytest

from datadistill.data.io import Example
from datadistill.data.labels import LabelMap
from datadistill.select import confidence, select_part1

LM = LabelMap(["0", "1"])


def _rows():
    # 6 rows of label 1 (top probabilities .95 .9 .8 .7 .6 .55), 2 of label 0 (.99, .52), one without scores
    probs = [(0.05, 0.95), (0.1, 0.9), (0.2, 0.8), (0.3, 0.7), (0.4, 0.6), (0.45, 0.55), (0.99, 0.01), (0.52, 0.48)]
    rows = [Example(text_a=f"t{i}", label="1" if p[1] > p[0] else "0", probs=list(p)) for i, p in enumerate(probs)]
    return rows + [Example(text_a="no scores", label="1")]


def test_confidence_comes_from_probabilities_or_logits():
    assert confidence(Example(text_a="a", probs=[0.2, 0.8])) == 0.8
    assert abs(confidence(Example(text_a="a", logits=[0.0, 0.0])) - 0.5) < 1e-9
    assert confidence(Example(text_a="a")) is None


def test_confidence_filter_keeps_exactly_the_rows_at_or_above_the_threshold():
    kept, summary = select_part1(_rows(), LM, min_confidence=0.7)
    assert [e.text_a for e in kept] == ["t0", "t1", "t2", "t3", "t6", "no scores"]  # order kept
    assert summary == "part.1: kept 6 of 9 rows (dropped 3 below confidence 0.7)"
    assert select_part1(_rows(), LM)[0] == _rows()  # off by default


def test_balancing_keeps_as_many_rows_of_each_class_as_the_rarest_has():
    kept, summary = select_part1(_rows(), LM, balance=True, seed=3)
    labels = [e.label for e in kept]
    assert labels.count("0") == 2 and labels.count("1") == 2 and {"t6", "t7"} <= {e.text_a for e in kept}
    assert summary == "part.1: kept 4 of 9 rows (dropped 5 to balance the classes (2 each))"
    assert select_part1(_rows(), LM, balance=True, seed=3)[0] == kept  # a fixed sample for a seed
    both, _ = select_part1(_rows(), LM, min_confidence=0.7, balance=True)
    assert sorted(e.label for e in both) == ["0", "1"]  # after filtering only t6 is a 0: one of each


def test_student_training_applies_the_rules_to_part1_only(senti_files, tmp_path, student_config, caplog):
    from datadistill import train_student

    part1 = tmp_path / "part.1"
    lines = (
        ["label\ttext_a\tprobs\tlogits"]
        + [f"1\t很好{i}\t0.4 0.6\t" for i in range(30)]
        + [f"0\t很差{i}\t0.9 0.1\t" for i in range(10)]
    )
    part1.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = student_config(senti_files, tmp_path, "bow", epochs=1, min_confidence=0.7)
    cfg["data"]["teacher_labelled"] = [str(part1)]
    caplog.set_level("INFO", logger="datadistill")
    train_student(cfg)
    assert "part.1: kept 10 of 40 rows (dropped 30 below confidence 0.7)" in caplog.text
    assert "part.0 400 rows, part.1 10 rows" in caplog.text
    assert json.loads((tmp_path / "bow" / "metrics.json").read_text())["config"]["train"]["min_confidence"] == 0.7


def test_logit_adjustment_trains_against_the_class_prior_and_answers_without_it(tmp_path, write_tsv, student_config):
    """Texts that say nothing, 90 % of them labelled 0: a student learns to answer 0 with ~0.9; trained
    against the prior (train.logit_adjust) it has no reason to prefer either class."""
    from datadistill import train_student
    from datadistill.predict import Predictor

    rows = [("0", "一样的话")] * 180 + [("1", "一样的话")] * 20
    files = {
        k: write_tsv(tmp_path / f"{k}.tsv", rows if k == "train" else rows[170:190]) for k in ("train", "dev", "test")
    }
    p0 = {}
    for adjust in (False, True):
        cfg = student_config(files, tmp_path / str(adjust), "bow", epochs=1, batch_size=8, lr=0.02, logit_adjust=adjust)
        train_student(cfg)
        p0[adjust] = float(Predictor(tmp_path / str(adjust) / "bow").predict_proba(["一样的话"])[0, 0])
    assert p0[False] > 0.8 and abs(p0[True] - 0.5) < 0.1, p0


def test_a_bad_logit_adjust_is_named_as_the_user_wrote_it():
    from datadistill.config import ConfigError, from_dict
    from datadistill.train import TrainConfig

    for value, said in ((None, "null"), (1, "1"), ("yes", "'yes'")):
        with pytest.raises(ConfigError) as e:
            from_dict(TrainConfig, {"logit_adjust": value}, "train")
        assert str(e.value) == f"train.logit_adjust: expected true or false, got {said}"
