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


def test_classical_baseline_on_pairs_learns_whether_the_sides_match(words):
    """Pairs: the label says whether both sides share their words; a model of one side cannot know."""
    rng = np.random.default_rng(0)
    vocab = ["苹果", "香蕉", "火车", "飞机", "电脑", "手机", "学校", "医院", "天气", "音乐", "电影", "足球"]

    def pairs(n):
        a, b, y = [], [], []
        for _ in range(n):
            w = list(rng.choice(vocab, 3, replace=False))
            same = rng.random() < 0.5
            other = w if same else list(rng.choice([v for v in vocab if v not in w], 3, replace=False))
            a.append("".join(w) + "怎么样")
            b.append("".join(rng.permutation(other)) + "好不好")
            y.append(int(same))
        return a, b, np.array(y)

    a, b, y = pairs(400)
    clf = ClassicalBaseline().fit(a, y, b)
    ta, tb, ty = pairs(200)
    assert np.mean(clf.predict_ids(ta, tb) == ty) >= 0.95
    s = clf.scores(ta, tb)
    assert s.shape == (200, 2) and np.array_equal(s.argmax(-1), clf.predict_ids(ta, tb))


def test_classical_pair_features_say_how_alike_the_two_texts_are():
    texts = ["北京天气", "上海天气", "今天下雨"]
    clf = ClassicalBaseline().fit(texts * 2, np.array([1, 0, 1, 0, 1, 0]), texts[::-1] * 2)
    va, vb = clf.vectorizer.transform(["北京天气", "北京天气"]), clf.vectorizer.transform(["北京天气", "上海下雨吗"])
    alike = clf._alike(va, vb, ["北京天气", "北京天气"], ["北京天气", "上海下雨吗"])
    # per order 1, 2, 3: cosine, Jaccard; then the length difference. The same text: alike in every way;
    # 北京天气 / 上海下雨吗 (吗 unseen in training): no char, bigram or trigram in common, lengths 4 and 5
    np.testing.assert_allclose(alike, [[1, 1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 1 / 5]], atol=1e-9)
    chars = clf._alike(va[:1], clf.vectorizer.transform(["天气好"]), ["北京天气"], ["天气好"])
    assert chars[0, 1] == 2 / 4 and chars[0, 3] == 1 / 3 and chars[0, 5] == 0  # 天 气 of 北 京 天 气 (好 unseen)


def test_calibrated_classical_gives_probabilities_in_label_order(sentiment, caplog):
    train, test = sentiment(200, seed=1), sentiment(60, seed=3)
    y = np.array([int(lab) for lab, _ in train])
    clf = ClassicalBaseline(calibrated=True).fit([t for _, t in train], y)
    p = clf.probs([t for _, t in test])
    assert p.shape == (60, 2) and np.allclose(p.sum(1), 1.0) and (p >= 0).all()
    assert clf.calibrated_model and clf.parameters() > 100
    assert np.mean(p.argmax(1) == np.array([int(lab) for lab, _ in test])) >= 0.95
    # a class with one row cannot be calibrated on held-out folds: the softmax of the decision values
    with caplog.at_level("WARNING", logger="datadistill"):
        few = ClassicalBaseline(calibrated=True).fit(["好", "好", "差"], np.array([1, 1, 0]))
    assert "a class has a single training row, so no held-out folds can calibrate the SVM" in caplog.text
    q = few.probs(["好", "差"])
    assert not few.calibrated_model and q.shape == (2, 2) and np.allclose(q.sum(1), 1.0)


def test_a_calibrated_classical_model_fitted_twice_gives_the_same_probabilities(sentiment):
    """liblinear shuffles its rows with numpy's global generator unless seeded: the ensemble teacher's
    part.1 of two runs on the same data would differ in the last digits."""
    train, test = sentiment(200, seed=1), sentiment(50, seed=3)
    texts, y = [t for _, t in train], np.array([int(lab) for lab, _ in train])
    runs = []
    for seed in (1, 2):
        np.random.seed(seed)  # what other code in the same process may have done
        runs.append(ClassicalBaseline(calibrated=True).fit(texts, y).probs([t for _, t in test]))
    assert np.array_equal(runs[0], runs[1])
