"""`datadistill run CONFIG.json`: the whole distillation, each step a file on disk, skipped when up to date.

Steps (in order; `--steps` picks some):
  teacher   fine-tune the teacher on data.train                      -> WORK/teacher/ (or teacher_dir)
  augment   augment data.train (if `augment` is set)                  -> WORK/student/unsup_train_aug
  label     teacher-label augmented + user unlabelled texts           -> WORK/student/train/part.1
            (part.0 = the original labelled data                      -> WORK/student/train/part.0)
  students  per student: a baseline on part.0 alone, and the distilled one on part.0 + part.1
                                                                      -> WORK/student/<name>_base/, <name>/
  report    test accuracy, size and measured speed of every model     -> WORK/report/

A step is skipped when its fingerprint (its config section, the content digests of its input files,
the presence of its outputs) matches the one recorded in WORK/.steps/<step>.json (the teacher's in
its own folder, so several runs can share one teacher) after it last finished, so a killed run
started again resumes at the first unfinished step (labelling also resumes inside the step, the
teacher's fine-tuning at its last dev evaluation).
"""
from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .augment import AugmentConfig, augment_file
from .config import ConfigError, apply_overrides, from_dict, load_json, to_dict
from .data.io import ExampleReader, atomic_write, clean_field, file_digest, model_digest, score_cache_name
from .student import DataConfig, StudentConfig, StudentRunConfig, train_student
from .teacher.hf import PRECISIONS, TeacherTrainConfig
from .train import TrainConfig

STEPS = ("teacher", "augment", "label", "students", "report")


@dataclass
class PipelineData:
    train: str = ""
    dev: str = ""
    test: str = ""
    label_column: str = "label"
    unlabelled: list[str] = field(default_factory=list)   # the user's in-domain texts (labels ignored)
    unlabelled_ratio: float | None = None                 # unlabelled : augmented rows (caps augmented rows)
    max_label_rows: int | None = None                     # label at most this many rows (quick settings)
    seed: int = 1

    def validate(self) -> None:
        for name in ("train", "dev", "test"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is required: a labelled TSV/JSONL path")


@dataclass
class LabelConfig:
    batch_size: int = 64
    chunk_size: int = 1024
    cache: bool = True      # keep the teacher's scores in TEACHER/scores.tsv: a text is scored once per teacher
    precision: str = "auto"  # auto: bf16 on a GPU that has it or a CPU with native bf16 (~2x faster), else fp32

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"label.precision must be auto, fp32, bf16 or fp16, got '{self.precision}'")


@dataclass
class RunConfig:
    work: str = "work/run"
    data: PipelineData = field(default_factory=PipelineData)
    teacher: TeacherTrainConfig = field(default_factory=lambda: TeacherTrainConfig(model="bundled:multilingual-e5-small"))
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)   # null: no augmentation (case 1 only)
    label: LabelConfig = field(default_factory=LabelConfig)
    students: dict[str, StudentConfig] = field(default_factory=dict)       # name -> student; e.g. {"bow": {...}}
    train: TrainConfig = field(default_factory=TrainConfig)                # student training, baseline and distilled
    distill: dict = field(default_factory=dict)                            # train keys that differ when distilling
    shards: int = 0                                                        # also write part.0+part.1 as N equal shards
    teacher_dir: str = ""   # where the teacher lives (default WORK/teacher); runs naming the same folder and the
                            # same teacher section share one fine-tuning (its step record is kept in the folder)

    def validate(self) -> None:
        if not self.students:
            raise ConfigError("students is empty: name at least one, e.g. {\"bow\": {\"arch\": \"bow\"}}")
        if self.augment is None and not self.data.unlabelled:
            raise ConfigError("nothing to label: set augment or data.unlabelled")
        from_dict(TrainConfig, {**to_dict(self.train), **self.distill}, "distill")


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    raw = apply_overrides(load_json(path), list(overrides))
    students = raw.get("students")
    if isinstance(students, dict):  # dict of dataclasses: coerce each value
        raw["students"] = {k: from_dict(StudentConfig, v, f"{path}.students.{k}") if isinstance(v, dict) else v
                           for k, v in students.items()}
    return from_dict(RunConfig, raw, str(path))


def _file_fp(path: str | Path) -> str:
    """A file's content digest, "missing" if absent (see `file_digest`)."""
    return file_digest(path) if Path(path).exists() else "missing"


# Settings that change how a step runs, never what it produces: a step is not redone for them.
NOT_IN_FINGERPRINT = ("checkpoint",)


def _settings(cfg) -> dict:
    """A config as a dict for a fingerprint, without the keys of NOT_IN_FINGERPRINT (at any depth)."""
    def strip(d):
        return {k: strip(v) for k, v in d.items() if k not in NOT_IN_FINGERPRINT} if isinstance(d, dict) else d
    return strip(to_dict(cfg))


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Pipeline:
    def __init__(self, cfg: RunConfig, log: Callable[[str], None] | None = None, progress: bool = True) -> None:
        self.cfg = cfg
        self.work = Path(cfg.work)
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        self.progress = progress
        w = self.work
        self.paths = {"teacher": Path(cfg.teacher_dir) if cfg.teacher_dir else w / "teacher", "aug": w / "student" / "unsup_train_aug",
                      "label_input": w / "student" / "label_input.tsv", "part0": w / "student" / "train" / "part.0",
                      "part1": w / "student" / "train" / "part.1", "shards": w / "student" / "train" / "shards",
                      "report": w / "report", "steps": w / ".steps"}

    # -- fingerprints ------------------------------------------------------------------------------
    def _fingerprint(self, step: str) -> dict:
        c, p = self.cfg, self.paths
        if step == "teacher":
            return {"cfg": _settings(c.teacher), "in": [_file_fp(c.data.train), _file_fp(c.data.dev)]}
        if step == "augment":
            return {"cfg": to_dict(c.augment), "in": [_file_fp(c.data.train)]}
        if step == "label":
            return {"cfg": [to_dict(c.label), to_dict(c.data)], "in": [self._teacher_fp(),
                    _file_fp(p["aug"]) if c.augment else None] + [_file_fp(u) for u in c.data.unlabelled]}
        if step == "students":
            return {"cfg": [to_dict(c.students), _settings(c.train), _settings(c.distill), c.shards],
                    "in": [_file_fp(p["part0"]), _file_fp(p["part1"]), _file_fp(c.data.dev), _file_fp(c.data.test)]}
        return {"in": [_file_fp(self.work / "student" / n / "metrics.json") for n in self._model_names()]
                + [self._teacher_fp(), _file_fp(c.data.test)]}

    def _teacher_fp(self) -> str:
        """The teacher's weights and settings (its model files), so a retrained teacher relabels."""
        return model_digest(self.paths["teacher"]) if self.paths["teacher"].is_dir() else "missing"

    def _outputs(self, step: str) -> list[Path]:
        p = self.paths
        return {"teacher": [p["teacher"] / "teacher.json"], "augment": [p["aug"]], "label": [p["part0"], p["part1"]],
                "students": [self.work / "student" / n / "model.safetensors" for n in self._model_names()],
                "report": [p["report"] / "report.json", p["report"] / "report.md"]}[step]

    def _model_names(self) -> list[str]:
        return [n for s in self.cfg.students for n in (f"{s}_base", s)]

    def record_path(self, step: str) -> Path:
        # The teacher's record travels with the teacher folder, so another run sharing it sees it is done.
        return self.paths["teacher"] / ".step.json" if step == "teacher" else self.paths["steps"] / f"{step}.json"

    def up_to_date(self, step: str) -> bool:
        rec = self.record_path(step)
        return rec.exists() and all(o.exists() for o in self._outputs(step)) and \
            json.loads(rec.read_text()).get("fingerprint") == _digest(self._fingerprint(step))

    def _record(self, step: str, seconds: float) -> None:
        rec = self.record_path(step)
        rec.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(rec) as f:
            f.write(json.dumps({"fingerprint": _digest(self._fingerprint(step)), "seconds": seconds}))

    # -- steps -------------------------------------------------------------------------------------
    def run(self, steps: list[str] | None = None, force: bool = False) -> None:
        steps = list(steps or STEPS)
        for s in steps:
            if s not in STEPS:
                raise ConfigError(f"unknown step '{s}' (steps: {', '.join(STEPS)})")
        if self.cfg.augment is None and "augment" in steps:
            steps.remove("augment")
        for step in STEPS:
            if step not in steps:
                continue
            if not force and self.up_to_date(step):
                self.log(f"[{step}] up to date, skipped")
                continue
            self.log(f"[{step}] running")
            t0 = time.perf_counter()
            getattr(self, f"step_{step}")()
            self._record(step, time.perf_counter() - t0)
            self.log(f"[{step}] done in {time.perf_counter() - t0:.0f}s")

    def _labelled(self, path: str):
        from .data.labels import LabelMap

        train = list(ExampleReader(path, label_column=self.cfg.data.label_column))
        return train, LabelMap.from_labels(e.label for e in train)

    def step_teacher(self) -> None:
        from .teacher.hf import finetune

        train, lm = self._labelled(self.cfg.data.train)
        dev = list(ExampleReader(self.cfg.data.dev, label_column=self.cfg.data.label_column, label_map=lm))
        m = finetune(self.cfg.teacher, train, dev, self.paths["teacher"], lm, progress=self.progress, log=self.log)
        (self.paths["teacher"] / "finetune_metrics.json").write_text(json.dumps(m, indent=1))

    def step_augment(self) -> None:
        stats = augment_file(self.cfg.data.train, self.paths["aug"], self.cfg.augment,
                             label_column=self.cfg.data.label_column, progress=self.progress)
        self.log(f"[augment] {stats.summary()}")

    def _label_input(self) -> Path:
        """Augmented texts and the user's unlabelled texts in one file (texts only), capped as configured."""
        d = self.cfg.data
        rng = random.Random(d.seed)
        unl = [e for u in d.unlabelled for e in ExampleReader(u, require_label=False)]
        aug = list(ExampleReader(self.paths["aug"], require_label=False)) if self.cfg.augment else []
        if unl and aug and d.unlabelled_ratio:
            keep = min(len(aug), int(len(unl) / d.unlabelled_ratio))
            aug = [aug[i] for i in sorted(rng.sample(range(len(aug)), keep))]
        rows = unl + aug
        if d.max_label_rows is not None and len(rows) > d.max_label_rows:
            rows = [rows[i] for i in sorted(random.Random(d.seed).sample(range(len(rows)), d.max_label_rows))]
        pair = any(e.text_b is not None for e in rows)
        with atomic_write(self.paths["label_input"]) as f:
            f.write("text_a" + ("\ttext_b" if pair else "") + "\n")
            for e in rows:
                f.write(clean_field(e.text_a) + (f"\t{clean_field(e.text_b or '')}" if pair else "") + "\n")
        self.log(f"[label] {len(rows)} texts to label ({len(unl)} unlabelled, {len(aug)} augmented kept)")
        return self.paths["label_input"]

    def step_label(self) -> None:
        from .label import label_file
        from .teacher.hf import HFTeacher

        self.paths["part0"].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.cfg.data.train, self.paths["part0"])  # same bytes: baselines stay up to date
        src = self.paths["label_input"]
        if not (self.paths["part1"].with_name("part.1.partial").exists() and src.exists()):
            src = self._label_input()
        teacher = HFTeacher(self.paths["teacher"], batch_size=self.cfg.label.batch_size,
                            precision=self.cfg.label.precision)
        self.log(f"[label] teacher on {teacher.device.type} in {teacher.precision}")
        cache = self.paths["teacher"] / score_cache_name(teacher.precision)
        stats = label_file(teacher, src, self.paths["part1"], batch_size=self.cfg.label.batch_size,
                           chunk_size=self.cfg.label.chunk_size, progress=self.progress, log=self.log,
                           cache=cache if self.cfg.label.cache else None)
        self.log(f"[label] {stats.summary()}")

    def step_students(self) -> None:
        c, p = self.cfg, self.paths
        if c.shards:
            write_shards([p["part0"], p["part1"]], p["shards"], c.shards, seed=c.data.seed)
        distill_train = from_dict(TrainConfig, {**to_dict(c.train), **c.distill}, "distill")
        for name, student in c.students.items():
            for suffix, part1, train_cfg in (("_base", [], c.train), ("", [str(p["part1"])], distill_train)):
                out = self.work / "student" / f"{name}{suffix}"
                run = StudentRunConfig(DataConfig(str(p["part0"]), c.data.dev, c.data.test, part1, c.data.label_column),
                                       student, train_cfg, str(out))
                # Same config is not enough: part.1 is rewritten in place when the teacher or the
                # label input changes, so the record also holds the fingerprints of the data files.
                record = out / ".pipeline.json"
                fp = _digest({"run": _settings(run), "in": [_file_fp(f) for f in [p["part0"], *part1, c.data.dev]]})
                if record.exists() and (out / "model.safetensors").exists() and \
                        json.loads(record.read_text()).get("fingerprint") == fp:
                    self.log(f"[students] {name}{suffix}: up to date")
                    continue
                self.log(f"[students] training {name}{suffix} ({'part.0 + part.1' if part1 else 'part.0 only'})")
                train_student(run, progress=self.progress, log=self.log)
                with atomic_write(record) as f:
                    f.write(json.dumps({"fingerprint": fp}))

    def step_report(self) -> None:
        from .report import write_report

        write_report(self.work, self.cfg, self._model_names(), self.paths["report"], log=self.log,
                     teacher_dir=self.paths["teacher"], teacher_precision=self.cfg.label.precision)


def write_shards(parts: list[Path], out_dir: Path, n: int, seed: int = 1) -> list[Path]:
    """part.0 + part.1 rows shuffled into `n` files of equal size (±1 row), each with the header of part.1.

    part.0 rows get empty probs/logits columns so every shard has one format."""
    header1 = Path(parts[1]).read_text(encoding="utf-8").split("\n", 1)[0].split("\t")
    rows: list[str] = []
    for part in parts:
        for ex in ExampleReader(part):
            vals = {"label": ex.label, "text_a": ex.text_a, "text_b": ex.text_b,
                    "tokens_a": " ".join(ex.tokens_a) if ex.tokens_a else "",
                    "tokens_b": " ".join(ex.tokens_b) if ex.tokens_b else "",
                    "probs": " ".join(f"{x:.6g}" for x in ex.probs) if ex.probs else "",
                    "logits": " ".join(f"{x:.6g}" for x in ex.logits) if ex.logits else ""}
            rows.append("\t".join(clean_field(vals[c] or "") for c in header1))
    random.Random(seed).shuffle(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = out_dir / f"part-{i:05d}"
        with atomic_write(path) as f:
            f.write("\t".join(header1) + "\n" + "".join(r + "\n" for r in rows[i::n]))
        paths.append(path)
    return paths
