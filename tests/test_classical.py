"""The classical baseline of every report: TF-IDF over character n-grams + a linear SVM."""

from __future__ import annotations

import numpy as np

from datadistill.classical import ClassicalBaseline


def test_classical_baseline_learns_the_fixture_task_and_reports_its_size(sentiment):
    train, test = sentiment(200, seed=1), sentiment(100, seed=3)
    clf = ClassicalBaseline().fit([t for _, t in train], np.array([int(lab) for lab, _ in train]))
    pred = clf.predict_ids([t for _, t in test])
    assert pred.shape == (100,) and np.mean(pred == np.array([int(lab) for lab, _ in test])) >= 0.95
    assert clf.parameters() > 100 and 0 < clf.size_mb() < 5
