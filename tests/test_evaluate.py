import numpy as np
import pytest

from datadistill.evaluate import classification_metrics


def test_metrics_on_a_known_confusion():
    gold = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    m = classification_metrics(gold, pred, ["a", "b", "c"])
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["a"] == {
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "support": 3,
    }
    f1_b, f1_c = 0.5, 2 * 0.5 * 1 / 1.5
    assert m["macro_f1"] == pytest.approx((0.8 + f1_b + f1_c) / 3)


def test_pair_order_within_groups_counts_correct_reversed_and_ties():
    from datadistill.evaluate import pair_order

    # query a: positives .9 .4, negatives .5 .4 -> (.9>.5 ok) (.9>.4 ok) (.4<.5 rev) (.4=.4 tie)
    # query b: one positive .2 and negative .7 -> reversed; query c: only negatives -> not counted
    scores = [0.9, 0.4, 0.5, 0.4, 0.2, 0.7, 0.1, 0.3]
    positive = [1, 1, 0, 0, 1, 0, 0, 0]
    groups = ["a", "a", "a", "a", "b", "b", "c", "c"]
    m = pair_order(scores, positive, groups)
    assert (m["correct"], m["reversed"], m["ties"], m["pairs"], m["groups"]) == (2, 2, 1, 5, 2)
    assert m["ratio"] == 1.0 and m["auc"] == (2 + 0.5) / 5 and m["grouped"]


def test_pair_order_without_groups_is_auc_over_one_minus_auc():
    from datadistill.evaluate import pair_order

    rng = np.random.default_rng(0)
    positive = rng.random(200) < 0.4
    scores = rng.random(200) + positive * 0.3  # no ties
    m = pair_order(scores, positive)
    assert m["ties"] == 0 and m["pairs"] == positive.sum() * (~positive).sum() and not m["grouped"]
    assert abs(m["ratio"] - m["auc"] / (1 - m["auc"])) < 1e-9
    # a brute-force count agrees
    brute = sum(int(p > n) for p in scores[positive] for n in scores[~positive])
    assert m["correct"] == brute
