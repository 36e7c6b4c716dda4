"""The work folder of `datadistill run`, laid out like ERNIE's data-distillation folder: one object
that the pipeline, the report and the bench scripts share, so no one works the paths out again.

    WORK/teacher/                 the fine-tuned teacher (or `teacher_dir`) and its score caches
    WORK/student/unsup_train_aug  augmented texts
    WORK/student/label_input.tsv  the texts the teacher labels (augmented + the user's unlabelled)
    WORK/student/train/part.0     the original labelled data
    WORK/student/train/part.1     teacher-labelled texts
    WORK/student/teacher_scores.tsv  the teacher's own scores, when part.1 holds an ensemble's
    WORK/student/ensemble.json    the ensemble's weight and dev scores (label.classical_weight)
    WORK/student/train/shards/    part.0 + part.1 in N equal files
    WORK/student/<name>/          each model folder (<name>_base: trained on part.0 alone)
    WORK/report/                  report.md, report.json, accuracy_vs_speed.png
    WORK/.steps/                  step records (the teacher's lives in its folder, see `record`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    work: Path
    teacher: Path

    @classmethod
    def of(cls, work: str | Path, teacher_dir: str | Path = "") -> "Layout":
        work = Path(work)
        return cls(work, Path(teacher_dir) if teacher_dir else work / "teacher")

    @property
    def aug(self) -> Path:
        return self.work / "student" / "unsup_train_aug"

    @property
    def label_input(self) -> Path:
        return self.work / "student" / "label_input.tsv"

    @property
    def part0(self) -> Path:
        return self.work / "student" / "train" / "part.0"

    @property
    def part1(self) -> Path:
        return self.work / "student" / "train" / "part.1"

    @property
    def teacher_scores(self) -> Path:
        return self.work / "student" / "teacher_scores.tsv"

    @property
    def ensemble(self) -> Path:
        return self.work / "student" / "ensemble.json"

    @property
    def shards(self) -> Path:
        return self.work / "student" / "train" / "shards"

    @property
    def report(self) -> Path:
        return self.work / "report"

    @property
    def steps(self) -> Path:
        return self.work / ".steps"

    def student(self, name: str) -> Path:
        return self.work / "student" / name

    def record(self, step: str) -> Path:
        """A step's record; the teacher's travels with the teacher folder, so runs sharing it see it is done."""
        return self.teacher / ".step.json" if step == "teacher" else self.steps / f"{step}.json"
