"""Student networks: a batch in, logits [batch, num_labels] out. Networks only; training is in train.py."""

from .base import STUDENTS, Student, build_student, register_student
from . import bow, cnn, lstm  # noqa: F401  (register the built-in students)

__all__ = ["STUDENTS", "Student", "build_student", "register_student"]
