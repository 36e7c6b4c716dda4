"""The classical baseline every report measures: TF-IDF over character n-grams with a linear SVM
(scikit-learn), trained on the gold labels (part.0) alone in seconds.

It answers the user's first question about a distilled student: is it worth more than a simple
model? It reads the same text the students read. For pairs it reads, like the pair students'
[u, v, |u-v|, u*v] head, the product and the absolute difference of the two sides' TF-IDF vectors:
which n-grams both sides share and which only one has.
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
    `scores(...)` -> decision values [N, C] (ordered like probabilities; argmax = predict_ids)."""

    def __init__(self, cfg: ClassicalConfig | None = None) -> None:
        _sklearn()
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        self.cfg = cfg = cfg or ClassicalConfig()
        self.vectorizer = TfidfVectorizer(
            analyzer="char",
            ngram_range=(cfg.ngram_min, cfg.ngram_max),
            min_df=cfg.min_df,
            sublinear_tf=cfg.sublinear_tf,
        )
        self.svm = LinearSVC(C=cfg.C)
        self.pair = False

    def _features(self, texts_a: list[str], texts_b: list[str] | None):
        if texts_b is None:
            return self.vectorizer.transform(texts_a)
        from scipy.sparse import hstack

        va, vb = self.vectorizer.transform(texts_a), self.vectorizer.transform(texts_b)
        return hstack([va.multiply(vb), abs(va - vb)]).tocsr()

    def fit(self, texts_a: list[str], label_ids, texts_b: list[str] | None = None) -> "ClassicalBaseline":
        self.pair = texts_b is not None
        self.vectorizer.fit(list(texts_a) + list(texts_b or []))
        self.svm.fit(self._features(texts_a, texts_b), np.asarray(label_ids))
        return self

    def scores(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        """Decision values [N, C] in label-id order (two classes: [-d, d])."""
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
        return int(self.svm.coef_.size + self.svm.intercept_.size)

    def size_mb(self) -> float:
        """The fitted model as pickled: the vocabulary of n-grams and the weights."""
        return len(pickle.dumps((self.vectorizer, self.svm))) / 2**20
