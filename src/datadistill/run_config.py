"""The run config of `datadistill run`: one dataclass per component (data, teacher, augment, label,
students, train, distill) combined into `RunConfig`, validated on load; from a JSON file, or built
from the command line's files and the measured defaults when there is no file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .augment import AugmentConfig
from .config import ConfigError, apply_overrides, check_ranges, from_dict, load_json, to_dict
from .student import StudentConfig
from .teacher import TEACHERS, load_kinds
from .teacher.base import PRECISIONS
from .teacher.hf import TeacherTrainConfig
from .train import TrainConfig


DEFAULT_TEACHER = "bundled:multilingual-e5-small"


@dataclass
class PipelineStudent(StudentConfig):
    """A student of a run: its network and features, and the training settings where it differs from
    the run's (a linear bag and a CNN may want different ones)."""

    train: dict = field(default_factory=dict)  # keys of the run's train section, for this student's both models
    distill: dict = field(default_factory=dict)  # keys of the run's distill section, for its distilled model

    def student(self) -> StudentConfig:
        """The network and features alone: what a model folder records and a student run reads."""
        return StudentConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(StudentConfig)})


@dataclass
class PipelineData:
    train: str = ""
    dev: str = ""
    test: str = ""
    label_column: str = "label"
    unlabelled: list[str] = field(default_factory=list)  # the user's in-domain texts (labels ignored)
    unlabelled_ratio: float | None = None  # unlabelled : augmented rows (caps augmented rows)
    max_label_rows: int | None = None  # label at most this many rows (quick settings)
    seed: int = 1
    # the positive class of a two-class task, for F1, AUC and the pair-order ratio in the report;
    # None: '1' when the labels are two and include it
    positive_label: str | None = None

    RANGES = {"unlabelled_ratio": (0, None, "open"), "max_label_rows": (1, None), "seed": (0, 2**32 - 1)}

    def validate(self) -> None:
        for name in ("train", "dev", "test"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is required: a labelled TSV/JSONL path")
        check_ranges(self)


@dataclass
class LabelConfig:
    batch_size: int = 64
    chunk_size: int = 1024
    cache: bool = True  # keep the teacher's scores in TEACHER/scores.tsv: a text is scored once per teacher
    precision: str = "auto"  # auto: bf16 on a GPU that has it or a CPU with native bf16 (~2x faster), else fp32
    # the ensemble teacher (ensemble.py): part.1 gets (1 - w) * teacher + w * classical probabilities;
    # 0: the teacher alone; "auto": the w in 0.0..0.9 best on dev, 0 when the classical model is far
    # below the teacher on dev (ensemble.CLOSE) or cannot be blended
    classical_weight: float | str = "auto"

    RANGES = {"batch_size": (1, None), "chunk_size": (1, None)}

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"label.precision must be auto, fp32, bf16 or fp16, got '{self.precision}'")
        w = self.classical_weight
        if isinstance(w, str) and w != "auto" or isinstance(w, float) and not 0 <= w < 1:
            raise ConfigError(
                f'label.classical_weight must be a number in [0, 1) or "auto" (the weight best on dev), got {w!r}'
            )
        check_ranges(self)


@dataclass
class RunConfig:
    work: str = "work/run"
    data: PipelineData = field(default_factory=PipelineData)
    # a teacher kind's config (teacher.kind: "hf" -> TeacherTrainConfig, "command" -> CommandTeacherConfig)
    teacher: Any = field(default_factory=lambda: TeacherTrainConfig(model=DEFAULT_TEACHER))
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)  # null: no augmentation (case 1 only)
    label: LabelConfig = field(default_factory=LabelConfig)
    # name -> student; e.g. {"bow": {...}}; default: a BOW and a CNN
    students: dict[str, PipelineStudent] = field(
        default_factory=lambda: {"bow": PipelineStudent(arch="bow"), "cnn": PipelineStudent(arch="cnn")}
    )
    train: TrainConfig = field(default_factory=TrainConfig)  # student training, baseline and distilled
    # train keys that differ when distilling; default: the main demo's measured setting (README)
    distill: dict = field(default_factory=lambda: {"loss": "kl", "epochs": 6})
    shards: int = 0  # also write part.0+part.1 as N equal shards
    teacher_dir: str = ""  # where the teacher lives (default WORK/teacher); runs naming the same folder and the
    # same teacher section share one fine-tuning (its step record is kept in the folder)

    RANGES = {"shards": (0, 10_000)}

    def validate(self) -> None:
        if not self.work.strip():
            raise ConfigError("work must not be empty: it names the work folder, e.g. work/run")
        if not self.students:
            raise ConfigError('students is empty: name at least one, e.g. {"bow": {"arch": "bow"}}')
        for name in self.students:
            if not name or name.endswith("_base") or not all(c.isalnum() or c in "-_." for c in name):
                raise ConfigError(
                    f"students: '{name}' cannot name a student: use letters, digits, '-', '_' or '.', not ending "
                    f"in '_base' (WORK/student/NAME_base is the student's baseline)"
                )
        if self.augment is None and not self.data.unlabelled:
            raise ConfigError("nothing to label: set augment or data.unlabelled")
        check_ranges(self)
        self.run_train_configs()  # the run's own mistakes are named as such, before any student's
        for name in self.students:
            self.train_configs(name)

    def run_train_configs(self) -> tuple[TrainConfig, TrainConfig]:
        """The run's own training settings (baseline, distilled): train, and train with distill's keys."""
        return self.train, from_dict(TrainConfig, {**to_dict(self.train), **self.distill}, "distill")

    def train_configs(self, name: str) -> tuple[TrainConfig, TrainConfig]:
        """Student `name`'s training settings (baseline, distilled): the run's train section, then the
        student's own train keys, then (distilled) the run's distill keys and the student's own."""
        s, run = self.students[name], to_dict(self.train)
        if not (s.train or s.distill):
            return self.run_train_configs()
        base = from_dict(TrainConfig, {**run, **s.train}, f"students.{name}.train")
        keys = {**run, **s.train, **self.distill, **s.distill}
        return base, from_dict(TrainConfig, keys, f"students.{name}.{'distill' if s.distill else 'train'}")


def load_config(path: str | Path | dict, overrides: list[str] = (), where: str | None = None) -> RunConfig:
    """A run config from a JSON file (or an already-read dict) with `--set` overrides, validated."""
    raw = dict(path) if isinstance(path, dict) else load_json(path)
    path = where or path
    touched = any(o.lstrip().startswith("students.") for o in overrides)  # --set students.NAME...
    if touched and "students" not in raw:  # a setting of a default student changes it, keeps the other defaults
        raw["students"] = {name: {"arch": s.arch} for name, s in RunConfig().students.items()}
    if "distill" not in raw and any(o.lstrip().startswith("distill.") for o in overrides):
        raw["distill"] = dict(RunConfig().distill)  # --set distill.KEY changes that key, keeps the default's others
    known = list(raw["students"]) if isinstance(raw.get("students"), dict) else []
    raw = apply_overrides(raw, list(overrides))
    students = raw.get("students")
    if touched and isinstance(students, dict):
        for name, v in students.items():
            if name not in known and not (isinstance(v, dict) and "arch" in v):
                raise ConfigError(
                    f"{path}.students.{name}: not a student of this run ({', '.join(known) or 'none'}); to add one, "
                    f"give its arch too (--set students.{name}.arch=bow)"
                )
    if isinstance(students, dict):  # dict of dataclasses: coerce each value
        for k, v in students.items():
            if not isinstance(v, dict):
                raise ConfigError(f'{path}.students.{k}: expected an object such as {{"arch": "bow"}}, got {v!r}')
        raw["students"] = {k: from_dict(PipelineStudent, v, f"{path}.students.{k}") for k, v in students.items()}
    if "teacher" in raw:
        raw["teacher"] = teacher_config(raw["teacher"], f"{path}.teacher")
    return from_dict(RunConfig, raw, str(path))


def config_from_args(
    path: str | Path | None,
    overrides: list[str] = (),
    *,
    train: str | None = None,
    dev: str | None = None,
    test: str | None = None,
    unlabelled: list[str] | None = None,
    students: str | None = None,
    work: str | None = None,
) -> RunConfig:
    """A run config from a JSON file, or from defaults when there is none, with the command line's
    files and `--set` overrides on top (the flags win over the file)."""
    raw = load_json(path) if path else {}
    where = str(path) if path else "command line"
    if not path and not (train and dev and test):
        raise ConfigError(
            "give a config file, or --train, --dev and --test (e.g. datadistill run --train "
            "chnsenticorp:train_500 --dev chnsenticorp:dev --test chnsenticorp:test)"
        )
    data = raw.setdefault("data", {})
    if not isinstance(data, dict):
        raise ConfigError(f"{where}.data: expected an object, got {data!r}")
    for key, value in (("train", train), ("dev", dev), ("test", test), ("unlabelled", unlabelled)):
        if value:
            data[key] = value
    if work:
        raw["work"] = work
    if students:
        raw["students"] = {name.strip(): {"arch": name.strip()} for name in students.split(",") if name.strip()}
    return load_config(raw, overrides, where=where)


def resolved_teacher(teacher: Any) -> Any:
    """A transformers teacher's settings with the device-dependent ones filled in for this machine."""
    if not isinstance(teacher, TeacherTrainConfig):
        return teacher
    from .teacher.hf import for_device
    from .train import resolve_device

    return for_device(teacher, resolve_device(teacher.device))


def teacher_config(section: Any, where: str = "teacher"):
    """The teacher section as the config dataclass of its kind (`kind`, default "hf")."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: expected an object, got {section!r}")
    load_kinds()
    kind = section.get("kind", "hf")
    if kind == "hf" and "model" not in section:
        section = {**section, "model": DEFAULT_TEACHER}  # a partial teacher section keeps the default model
    if not isinstance(kind, str) or kind not in TEACHERS:
        from .registry import unknown_name_message

        raise ConfigError(f"{where}.kind: " + unknown_name_message("teacher kind", str(kind), TEACHERS.names()))
    cls = TEACHERS.get(kind).config_class
    if cls is None:
        raise ConfigError(f"{where}.kind: the teacher kind '{kind}' has no config section; it cannot run in a pipeline")
    return from_dict(cls, section, where)
