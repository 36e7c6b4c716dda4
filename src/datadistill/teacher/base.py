"""The teacher contract and registry.

A teacher kind is a `Teacher` subclass registered by name (`register_teacher`); the pipeline config
names it in `teacher.kind`. Each kind declares its config dataclass (`config_class`), how to make
a scoring teacher from that config and its folder (`load`), and, when it can be fine-tuned, how
(`finetune`; kinds that cannot, such as an external program, leave it None).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ..errors import TeacherError
from ..registry import Registry

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Teacher",
    "TeacherError",
    "TeacherScores",
    "TEACHERS",
    "register_teacher",
    "PRECISIONS",
    "import_transformers",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 where it is native (see teacher.hf.resolve_precision)


@dataclass
class TeacherScores:
    labels: list[str]  # hard label per text
    probs: np.ndarray | None = None  # [N, C] rows sum to one, label order = Teacher.label_names
    logits: np.ndarray | None = None  # [N, C]


class Teacher(abc.ABC):
    """Base class: `score(texts_a, texts_b)` for one batch; `unk_token` replaces augmentation's `[UNK]`."""

    name = "base"
    label_names: list[str] | None = None
    unk_token: str = "[UNK]"
    config_class: ClassVar[type | None] = None  # the pipeline's `teacher` section for this kind
    finetune: ClassVar[Callable[..., dict] | None] = None  # (cfg, train, dev, out_dir, label_map, progress)

    @abc.abstractmethod
    def score(self, texts_a: list[str], texts_b: list[str] | None = None) -> TeacherScores:
        """Scores for one batch of texts (or pairs)."""

    @classmethod
    def load(
        cls,
        cfg: Any,
        folder: Path,
        batch_size: int,
        precision: str,
        device: str = "auto",
        labels: list[str] | None = None,
    ) -> "Teacher":
        """The scoring teacher for a pipeline config section and its folder, its scores in the order of
        `labels` (the data's label map) when given. A teacher class without a config section (one made
        in Python and handed to `label_file`) cannot be named in a pipeline config."""
        raise TeacherError(
            f"teacher kind '{cls.name}' cannot be built from a pipeline config: it has no config "
            f"section (register a kind with config_class and load)"
        )

    def describe(self) -> str:
        """A stable description (for resume checks and the score cache): what this teacher is."""
        return self.name

    def parameters(self) -> int | None:
        """Number of parameters, where known (the report shows it)."""
        return None


TEACHERS: Registry[type[Teacher]] = Registry("teacher kind")
register_teacher = TEACHERS.register


def import_transformers():
    """`transformers`, quiet, or a TeacherError saying how to install it."""
    try:
        import transformers
    except ImportError:  # pragma: no cover - depends on the install
        raise TeacherError(
            "the transformers teacher needs the 'transformers' package: pip install 'datadistill[teacher]'"
        ) from None
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers
