"""The classical baseline every report measures: TF-IDF over character n-grams with a linear SVM
(scikit-learn), trained on the gold labels (part.0) alone in seconds.

It answers the user's first question about a distilled student: is it worth more than a simple
model? It reads the same text the students read. For pairs it reads, like the pair students'
[u, v, |u-v|, u*v] head, the product and the absolute difference of the two sides' TF-IDF vectors:
which n-grams both sides share and which only one has; and, like the linear pair bag's `similarity`,
how alike the two texts are as wholes: per n-gram order the cosine and the Jaccard overlap of the two
vectors, and the difference of their lengths.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError("the classical baseline needs scikit-learn: pip install 'datadistill[report]'") from None


@dataclass
class ClassicalConfig:
    ngram_min: int = 1
    ngram_max: int = 3
    min_df: int = 1
    sublinear_tf: bool = True
    C: float = 1.0


class ClassicalBaseline:
    """`fit(texts_a, label_ids[, texts_b])`, then `predict_ids(texts_a[, texts_b])` -> label ids [N] and
    `scores(...)` -> decision values [N, C] (ordered like probabilities; argmax = predict_ids).

    calibrated=True: the SVM's decision values become probabilities (`probs`) by Platt scaling fitted
    on held-out folds (scikit-learn's CalibratedClassifierCV, up to 5 stratified folds), what an
    ensemble averaging probabilities needs (ensemble.py).
    """

    def __init__(self, cfg: ClassicalConfig | None = None, calibrated: bool = False) -> None:
        _sklearn()
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        self.cfg = cfg = cfg or ClassicalConfig()
        self.calibrated = calibrated
        self.vectorizer = TfidfVectorizer(
            analyzer="char",
            ngram_range=(cfg.ngram_min, cfg.ngram_max),
            min_df=cfg.min_df,
            sublinear_tf=cfg.sublinear_tf,
        )
        self.svm = LinearSVC(C=cfg.C, random_state=0)  # liblinear shuffles: seeded, so a run repeats
        self.pair = False

    def _features(self, texts_a: list[str], texts_b: list[str] | None):
        if texts_b is None:
            return self.vectorizer.transform(texts_a)
        from scipy.sparse import hstack

        va, vb = self.vectorizer.transform(texts_a), self.vectorizer.transform(texts_b)
        return hstack([va.multiply(vb), abs(va - vb), self._alike(va, vb, texts_a, texts_b)]).tocsr()

    def _alike(self, va, vb, texts_a: list[str], texts_b: list[str]) -> np.ndarray:
        """[N, 2 x orders + 1]: per n-gram order the cosine and the Jaccard overlap of the two sides'
        TF-IDF vectors over that order's n-grams, then |len_a - len_b| / the longer length."""
        cols = []
        for idx in self.order_columns:
            a, b = va[:, idx], vb[:, idx]
            dot = np.asarray(a.multiply(b).sum(1)).ravel()
            norms = np.sqrt(np.asarray(a.multiply(a).sum(1)).ravel() * np.asarray(b.multiply(b).sum(1)).ravel())
            cols.append(dot / np.maximum(norms, 1e-12))
            in_a, in_b = a > 0, b > 0
            inter = np.asarray(in_a.multiply(in_b).sum(1)).ravel()
            union = in_a.sum(1).A.ravel() + in_b.sum(1).A.ravel() - inter
            cols.append(inter / np.maximum(union, 1))
        len_a, len_b = np.array([len(t) for t in texts_a]), np.array([len(t) for t in texts_b])
        cols.append(np.abs(len_a - len_b) / np.maximum(np.maximum(len_a, len_b), 1))
        return np.stack(cols, 1)

    def fit(self, texts_a: list[str], label_ids, texts_b: list[str] | None = None) -> "ClassicalBaseline":
        self.pair = texts_b is not None
        self.vectorizer.fit(list(texts_a) + list(texts_b or []))
        if self.pair:  # the vocabulary's columns of each n-gram order, for _alike (found once, not per call)
            order = np.zeros(len(self.vectorizer.vocabulary_), dtype=np.int64)
            for gram, col in self.vectorizer.vocabulary_.items():
                order[col] = len(gram)
            self.order_columns = [np.flatnonzero(order == n) for n in range(self.cfg.ngram_min, self.cfg.ngram_max + 1)]
        y = np.asarray(label_ids)
        self.num_labels = int(y.max()) + 1
        folds = int(np.bincount(y)[np.unique(y)].min()) if len(y) else 0
        if self.calibrated and folds >= 2 and len(np.unique(y)) >= 2:
            from sklearn.calibration import CalibratedClassifierCV

            # folds: up to 5, each holding one row of the rarest class at least (stratified, unshuffled)
            self.svm = CalibratedClassifierCV(self.svm, cv=min(5, folds), method="sigmoid")
        elif self.calibrated:
            from .log import logger

            logger.getChild("classical").warning(
                "classical: a class has a single training row, so no held-out folds can calibrate the SVM; "
                "its probabilities are the softmax of its decision values (flatter than calibrated ones)"
            )
        self.svm.fit(self._features(texts_a, texts_b), y)
        return self

    def probs(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        """Probabilities [N, C] in label-id order (a label the training data lacks gets 0). Calibrated
        when the model was made with calibrated=True and every class had two rows or more; otherwise
        the softmax of the decision values."""
        x = self._features(texts_a, texts_b)
        full = np.zeros((len(texts_a), self.num_labels))
        if hasattr(self.svm, "predict_proba"):
            full[:, self.svm.classes_] = self.svm.predict_proba(x)
            return full
        from .batching import softmax

        return softmax(self.scores(texts_a, texts_b))

    def scores(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        """Decision values [N, C] in label-id order (two classes: [-d, d]); a calibrated model's
        probabilities."""
        if hasattr(self.svm, "predict_proba"):
            return self.probs(texts_a, texts_b)
        d = self.svm.decision_function(self._features(texts_a, texts_b))
        full = np.zeros((len(texts_a), int(self.svm.classes_.max()) + 1))
        if d.ndim == 1:
            d = np.stack([-d, d], axis=1)
        full[:] = -np.inf  # a label the training data lacks never wins
        full[:, self.svm.classes_] = d
        return full

    def predict_ids(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        return self.scores(texts_a, texts_b).argmax(-1)

    def parameters(self) -> int:
        svms = [c.estimator for c in self.svm.calibrated_classifiers_] if self.calibrated_model else [self.svm]
        return sum(int(m.coef_.size + m.intercept_.size) for m in svms)

    @property
    def calibrated_model(self) -> bool:
        return hasattr(self.svm, "calibrated_classifiers_")

    def size_mb(self) -> float:
        """The fitted model as pickled: the vocabulary of n-grams and the weights."""
        return len(pickle.dumps((self.vectorizer, self.svm))) / 2**20
