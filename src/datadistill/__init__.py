"""datadistill: distil a large fine-tuned text model into a tiny, fast student through data."""

from __future__ import annotations

__version__ = "0.1.0"

from .api import augment, evaluate, load_model, predict, predict_proba, train_student  # noqa: E402

__all__ = ["augment", "train_student", "evaluate", "predict", "predict_proba", "load_model", "__version__"]
