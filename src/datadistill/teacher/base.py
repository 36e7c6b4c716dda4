"""The teacher contract and registry."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from ..registry import Registry


class TeacherError(RuntimeError):
    """A teacher failed (crashed, timed out, answered malformed lines); the message says how."""


@dataclass
class TeacherScores:
    labels: list[str]                  # hard label per text
    probs: np.ndarray | None = None    # [N, C] rows sum to one, label order = Teacher.label_names
    logits: np.ndarray | None = None   # [N, C]


class Teacher(abc.ABC):
    """Base class: `score(texts_a, texts_b)` for one batch; `unk_token` replaces augmentation's `[UNK]`."""

    name = "base"
    label_names: list[str] | None = None
    unk_token: str = "[UNK]"

    @abc.abstractmethod
    def score(self, texts_a: list[str], texts_b: list[str] | None = None) -> TeacherScores:
        """Scores for one batch of texts (or pairs)."""

    def describe(self) -> str:
        """A stable description (for resume checks): what this teacher is."""
        return self.name

    def close(self) -> None:
        pass


TEACHERS: Registry[type[Teacher]] = Registry("teacher")
register_teacher = TEACHERS.register
