"""Teachers: anything that scores texts. Same contract as the students: texts in, scores [N, num_labels] out.

A teacher returns `TeacherScores` per batch: hard labels always, probabilities and logits when it has them.
"""
from .base import TEACHERS, Teacher, TeacherError, TeacherScores, register_teacher
from .command import CommandTeacher  # noqa: F401  (registers "command")

__all__ = ["TEACHERS", "Teacher", "TeacherError", "TeacherScores", "register_teacher", "CommandTeacher"]
