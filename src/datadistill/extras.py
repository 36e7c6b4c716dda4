"""Optional packages (pip extras), imported only by the commands that need them, with the line that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

# top-level module -> the extra of pyproject.toml that brings it
EXTRAS = {"onnxruntime": "onnx", "onnx": "export", "fastapi": "serve", "uvicorn": "serve"}


def require(module: str, purpose: str, extra: str | None = None) -> ModuleType:
    """`import module`, or a one-line MissingExtraError: '<purpose> needs <package>: pip install ...'
    (the extra of `module`, or `extra` when the command's own extra brings it too)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingExtraError(
            f"{purpose} needs the '{top}' package, which is not installed: "
            f"pip install 'datadistill[{extra or EXTRAS[top]}]'"
        ) from None
