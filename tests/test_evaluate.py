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
