"""The ensemble teacher: blending, the dev-chosen weight, and part.1 rewritten from the blend."""

from __future__ import annotations

import numpy as np
import pytest

from datadistill.config import ConfigError, from_dict
from datadistill.data import read_examples
from datadistill.ensemble import CLOSE, WEIGHTS, auto_weight, blend, blend_file, choose_weight
from datadistill.run_config import LabelConfig


def test_blend_is_the_weighted_average_of_the_probabilities():
    p_T, p_C = np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.5, 0.5], [1.0, 0.0]])
    assert np.allclose(blend(p_T, p_C, 0.0), p_T)
    assert np.allclose(blend(p_T, p_C, 0.25), [[0.8, 0.2], [0.4, 0.6]])


def test_choose_weight_takes_the_best_dev_accuracy_and_the_smaller_weight_on_ties():
    gold = np.array([0, 1, 1, 0])
    # the teacher gets rows 0-2 right and row 3 wrong by a little; the classical model is sure of row 3
    p_T = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.44, 0.56]])
    p_C = np.array([[0.6, 0.4], [0.4, 0.6], [0.4, 0.6], [0.95, 0.05]])
    w, table = choose_weight(p_T, p_C, gold, ["0", "1"])
    # row 3 flips once 0.56 (1 - w) + 0.05 w < 0.5, i.e. w > 0.118: 0.2 is the smallest weight with 4 of 4
    assert w == 0.2 and [r["weight"] for r in table] == list(WEIGHTS)
    assert table[0]["accuracy"] == 0.75 and table[2]["accuracy"] == 1.0
    # a classical model that adds nothing leaves the teacher alone
    assert choose_weight(p_T, p_T, gold, ["0", "1"])[0] == 0.0


def test_choose_weight_counts_macro_f1_for_more_than_two_classes():
    gold = np.array([0, 0, 0, 0, 1])
    p_T = np.array([[0.9, 0.05, 0.05]] * 3 + [[0.55, 0.45, 0.0]] * 2)  # never says b
    p_C = np.array([[0.4, 0.3, 0.3]] * 3 + [[0.0, 1.0, 0.0]] * 2)
    # from w = 0.1 on, rows 3 and 4 both say b: one right, one wrong, so accuracy stays 4 of 5 while
    # macro-F1 rises (b is found): accuracy alone would keep w = 0 (ties go to the smaller weight)
    w, table = choose_weight(p_T, p_C, gold, ["a", "b", "c"])
    assert table[0]["accuracy"] == table[1]["accuracy"] == 0.8 and table[1]["macro_f1"] > table[0]["macro_f1"]
    assert w == 0.1
    assert choose_weight(p_T[:, :2], p_C[:, :2], gold, ["a", "b"])[0] == 0.0  # two classes: accuracy alone


def test_auto_weight_keeps_the_teacher_alone_when_the_classical_model_is_far_below_it():
    gold = np.array([0, 1] * 50)
    right = np.eye(2)[gold] * 0.8 + 0.1  # [100, 2], sure of the gold label
    wrong = right[:, ::-1]
    p_T = right.copy()
    p_C = np.where(np.arange(100)[:, None] < 4, wrong, right)  # 96 of 100: 4 points below the teacher
    w, grid, gap = auto_weight(p_T, p_C, gold, ["0", "1"])
    assert (w, grid) == (0.0, []) and gap == pytest.approx(0.04)
    # 3 points below (CLOSE) is close enough: the grid is tried, and a classical model adding nothing gives 0
    p_C = np.where(np.arange(100)[:, None] < 3, wrong, right)
    w, grid, gap = auto_weight(p_T, p_C, gold, ["0", "1"])
    assert CLOSE == 0.03 and gap == pytest.approx(0.03) and w == 0.0 and len(grid) == len(WEIGHTS)
    # a classical model above the teacher: choose_weight's answer
    p_T[:5] = wrong[:5]
    assert auto_weight(p_T, right, gold, ["0", "1"])[:2] == choose_weight(p_T, right, gold, ["0", "1"])


def test_the_ensemble_is_chosen_on_dev_by_default():
    assert LabelConfig().classical_weight == "auto"


class _Member:
    def probs(self, a, b=None):
        return np.array([[0.0, 1.0] if "好" in t else [1.0, 0.0] for t in a])


def test_blend_file_rewrites_labels_probs_and_logits(tmp_path):
    src, dst = tmp_path / "scores.tsv", tmp_path / "part.1"
    src.write_text(
        "label\ttext_a\tprobs\tlogits\n0\t好[UNK]\t0.6 0.4\t0.2 -0.2\n1\t差\t0.3 0.7\t-0.4 0.4\n", encoding="utf-8"
    )
    counts = blend_file(src, dst, _Member(), 0.5, ["0", "1"])
    rows = read_examples(dst, label_column="label")
    assert [r.text_a for r in rows] == ["好[UNK]", "差"] and counts == {"1": 1, "0": 1}
    assert np.allclose(rows[0].probs, [0.3, 0.7]) and rows[0].label == "1"
    assert np.allclose(rows[1].probs, [0.65, 0.35]) and rows[1].label == "0"
    assert np.allclose(np.exp(rows[1].logits), rows[1].probs, atol=1e-5)


def test_blend_file_refuses_rows_without_probabilities(tmp_path):
    from datadistill.errors import DataError

    src = tmp_path / "scores.tsv"
    src.write_text("label\ttext_a\tprobs\tlogits\n0\t好\t\t\n", encoding="utf-8")
    with pytest.raises(DataError, match="a row has no probabilities: an ensemble needs the teacher's scores"):
        blend_file(src, tmp_path / "out", _Member(), 0.5, ["0", "1"])


@pytest.mark.parametrize("bad", [1.0, -0.1, "best"])
def test_label_classical_weight_is_checked(bad):
    with pytest.raises(ConfigError, match=r"label.classical_weight must be a number in \[0, 1\) or \"auto\""):
        from_dict(LabelConfig, {"classical_weight": bad}, "label")
    assert from_dict(LabelConfig, {"classical_weight": "auto"}).classical_weight == "auto"


def test_scores_that_are_not_probabilities_are_refused_with_the_row(tmp_path):
    from datadistill.ensemble import check_probs
    from datadistill.errors import DataError

    check_probs(np.array([[0.25, 0.75], [1.0, 0.0]]), "dev")
    with pytest.raises(
        DataError, match=r"^dev: row 2 has scores \[70, 30\], not probabilities \(non-negative, summing"
    ):
        check_probs(np.array([[0.25, 0.75], [70.0, 30.0]]), "dev")
    with pytest.raises(DataError, match=r"^dev: row 1 has scores \[nan, nan\], not probabilities"):
        check_probs(np.array([[np.nan, np.nan], [0.2, 0.8]]), "dev")
    src = tmp_path / "scores.tsv"
    src.write_text("label\ttext_a\tprobs\tlogits\n0\t好\t0.5 0.5\t\n1\t差\t1.5 -0.5\t\n", encoding="utf-8")
    # in a file, the reader names the line first
    with pytest.raises(DataError, match=r"scores.tsv, line 3: probs must be probabilities in \[0, 1\] adding up to 1"):
        blend_file(src, tmp_path / "out", _Member(), 0.5, ["0", "1"])
