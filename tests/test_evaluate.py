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


def test_macro_f1_leaves_out_a_class_neither_in_gold_nor_predicted():
    m = classification_metrics(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)  # c: no support, never predicted
    assert m["per_class"]["c"]["support"] == 0
    m = classification_metrics(np.array([0, 0]), np.array([0, 0]), ["0", "1"])
    assert (m["accuracy"], m["macro_f1"]) == (1.0, 1.0)


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


def test_pair_order_skips_a_group_with_only_positives():
    from datadistill.evaluate import pair_order

    # query a: positives .8 .6 only (not counted); query b: positive .3 vs negatives .1 .3 .9
    m = pair_order([0.8, 0.6, 0.3, 0.1, 0.3, 0.9], [1, 1, 1, 0, 0, 0], ["a", "a", "b", "b", "b", "b"])
    assert (m["correct"], m["reversed"], m["ties"], m["groups"]) == (1, 1, 1, 1)
    assert m["ratio"] == 1.0 and m["auc"] == 0.5


def test_pair_order_of_a_perfect_ranking_is_infinite_and_of_no_pairs_undefined():
    from datadistill.evaluate import pair_order

    assert pair_order([0.9, 0.1], [1, 0])["ratio"] == float("inf")
    m = pair_order([0.9, 0.8], [1, 1])
    assert m["pairs"] == 0 and np.isnan(m["ratio"]) and np.isnan(m["auc"])


def _ex(text_a, qid=None):
    from datadistill.data.io import Example

    return Example(text_a=text_a, text_b="b", qid=qid)


def test_query_groups_prefer_qid_then_shared_text_a_then_all_pairs():
    from datadistill.evaluate import query_groups

    pos = np.array([True, False, True, False])
    groups, how = query_groups([_ex("x", "1"), _ex("y", "1"), _ex("x", "2"), _ex("y", "2")], pos)
    assert groups == ["1", "1", "2", "2"] and how == "within qid groups"
    groups, how = query_groups([_ex("q1"), _ex("q1"), _ex("q2"), _ex("q2")], pos)
    assert groups == ["q1", "q1", "q2", "q2"] and how == "within groups of the same text_a"
    # one candidate per query (LCQMC): every positive against every negative
    groups, how = query_groups([_ex("a"), _ex("b"), _ex("c"), _ex("d")], pos)
    assert groups is None and how.startswith("over all positive-negative pairs")


def test_task_metrics_add_the_ranking_view_for_a_two_class_task_only():
    from datadistill.evaluate import format_metrics, task_metrics

    gold = np.array([1, 0, 1, 0, 1])
    probs = np.array([[0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.9, 0.1], [0.1, 0.9]])
    m = task_metrics(gold, probs, ["0", "1"], examples=[_ex(t) for t in "abcde"])
    r = m["ranking"]
    # positives .8 .3 .9 vs negatives .6 .1: correct 5 (.8>.6 .8>.1 .3>.1 .9>.6 .9>.1), reversed 1 (.3<.6)
    assert (r["correct"], r["reversed"], r["ties"]) == (5, 1, 0) and r["pair_order"] == 5.0
    assert r["auc"] == pytest.approx(5 / 6) and r["positive"] == "1"
    assert r["f1_positive"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # prec 2/3, recall 2/3
    assert "pair-order 5.00 (5 correct / 1 reversed, 0 ties, over all positive-negative pairs" in format_metrics(m)
    three = task_metrics(np.array([0, 1, 2]), np.eye(3), ["a", "b", "c"])
    assert "ranking" not in three and three["accuracy"] == 1.0
    assert task_metrics(gold, probs, ["neg", "pos"], positive="neg")["ranking"]["positive"] == "neg"
    with pytest.raises(ValueError, match="positive label 'x' is not a label of this task"):
        task_metrics(gold, probs, ["0", "1"], positive="x")
