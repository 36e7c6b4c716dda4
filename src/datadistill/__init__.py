"""datadistill: distil a large fine-tuned text model into a tiny, fast student through data."""
from __future__ import annotations

__version__ = "0.1.0"

from .api import augment  # noqa: E402

__all__ = ["augment", "__version__"]
