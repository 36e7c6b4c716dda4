"""The Python API: the same verbs as the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .augment import AugmentStats


def augment(
    input: str | Path,
    output: str | Path,
    *,
    label_column: str = "label",
    skip_bad_lines: bool = False,
    progress: bool = False,
    **settings,
) -> AugmentStats:
    """Augment the texts of `input` into `output`; `settings` are `AugmentConfig` fields (n_iter, p_unk, ...)."""
    from .augment import AugmentConfig, augment_file
    from .config import from_dict

    cfg = from_dict(AugmentConfig, settings, "augment")
    return augment_file(input, output, cfg, label_column=label_column, skip_bad_lines=skip_bad_lines, progress=progress)


def train_student(
    config: str | Path | dict | None = None, *, overrides: list[str] = (), progress: bool = False
) -> dict:
    """Train a student from a JSON config path (or dict) with `--set`-style overrides; returns its metrics."""
    from .config import apply_overrides, from_dict
    from .student import StudentRunConfig, load_run_config
    from .student import train_student as _train

    if isinstance(config, dict):
        cfg = from_dict(StudentRunConfig, apply_overrides(dict(config), list(overrides)))
    else:
        cfg = load_run_config(config, overrides)
    return _train(cfg, progress=progress)


def load_model(folder: str | Path, backend: str | None = None):
    """A predictor for a student folder (torch) or an export folder (onnxruntime, without torch); backend
    None picks by the folder's files ('datadistill export' makes export folders)."""
    from .predict import load_predictor

    return load_predictor(folder, backend)


def predict(folder: str | Path, texts: list[str], texts_b: list[str] | None = None) -> list[str]:
    """Labels for `texts` from the model in `folder`."""
    return load_model(folder).predict(texts, texts_b)


def predict_proba(folder: str | Path, texts: list[str], texts_b: list[str] | None = None):
    """Probabilities [N, C] (label order: `load_model(folder).labels`)."""
    return load_model(folder).predict_proba(texts, texts_b)


def evaluate(folder: str | Path, data: str | Path, label_column: str = "label") -> dict:
    """Accuracy, macro-F1, per-class scores and the confusion matrix of a model folder on a labelled file."""
    from .student import evaluate_folder

    return evaluate_folder(folder, data, label_column)
