"""The Python API: the same verbs as the command line."""
from __future__ import annotations

from pathlib import Path

from .augment import AugmentConfig, AugmentStats, augment_file


def augment(input: str | Path, output: str | Path, *, label_column: str = "label",
            skip_bad_lines: bool = False, progress: bool = False, **settings) -> AugmentStats:
    """Augment the texts of `input` into `output`; `settings` are `AugmentConfig` fields (n_iter, p_unk, ...)."""
    from .config import from_dict

    cfg = from_dict(AugmentConfig, settings, "augment")
    return augment_file(input, output, cfg, label_column=label_column, skip_bad_lines=skip_bad_lines,
                        progress=progress)
