"""The classical baseline every report measures: TF-IDF over character n-grams with a linear SVM
(scikit-learn), trained on the gold labels (part.0) alone in seconds.

It answers the user's first question about a distilled student: is it worth more than a simple
model? It reads the same text the students read (text_a, or text_a + text_b joined for pairs).
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
    """`fit(texts, label_ids)`, then `predict_ids(texts)` -> label ids [N]."""

    def __init__(self, cfg: ClassicalConfig | None = None) -> None:
        _sklearn()
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline
        from sklearn.svm import LinearSVC

        self.cfg = cfg = cfg or ClassicalConfig()
        self.model = make_pipeline(
            TfidfVectorizer(
                analyzer="char",
                ngram_range=(cfg.ngram_min, cfg.ngram_max),
                min_df=cfg.min_df,
                sublinear_tf=cfg.sublinear_tf,
            ),
            LinearSVC(C=cfg.C),
        )

    def fit(self, texts: list[str], label_ids: np.ndarray) -> "ClassicalBaseline":
        self.model.fit(texts, label_ids)
        return self

    def predict_ids(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.predict(texts))

    def parameters(self) -> int:
        svm = self.model[-1]
        return int(svm.coef_.size + svm.intercept_.size)

    def size_mb(self) -> float:
        """The fitted model as pickled: the vocabulary of n-grams and the weights."""
        return len(pickle.dumps(self.model)) / 2**20
