"""Teachers: anything that scores texts. Same contract as the students: texts in, scores [N, num_labels] out.

A teacher returns `TeacherScores` per batch: hard labels always, probabilities and logits when it has them.
Kinds (`teacher.kind` in a pipeline config): `hf` (any transformers checkpoint, or `bundled:NAME`)
and `command` (an external program). `load_kinds()` registers them all.
"""

from .base import TEACHERS, Teacher, TeacherError, TeacherScores, register_teacher


def load_kinds() -> None:
    """Import every built-in teacher kind so it registers (transformers and torch are imported here)."""
    from . import command, hf  # noqa: F401


__all__ = ["TEACHERS", "Teacher", "TeacherError", "TeacherScores", "register_teacher", "load_kinds"]
