"""`datadistill run CONFIG.json`: the whole distillation, each step a file on disk, skipped when up to date.

The steps are declared once, in `STEPS` at the bottom: each names the steps it reads from, its
input files, its settings and its outputs, and the function that runs it. Adding a step is one
entry there.

A step is skipped when its fingerprint matches the record written when it last finished
(WORK/.steps/<step>.json; the teacher's in its own folder, so runs can share one teacher) and its
outputs exist. The fingerprint holds only contents: the step's settings without any paths, and the
content digests of its input files. A killed run started again therefore resumes at the first
unfinished step (labelling also inside the step, training at its last dev evaluation). When only
some steps are asked for (`--steps`), every step they read from must be up to date: otherwise the
run stops with a message naming the stale step and why, instead of training on old data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .augment import augment_file
from .config import ConfigError, from_dict, to_dict
from .data.cache import content_digest, digest, score_cache_name
from .data.io import ExampleReader, ExampleWriter, atomic_write, read_splits
from .ensemble import check_probs
from .datasets import resolve as resolve_data
from .errors import DataError, StaleInputError
from .layout import Layout
from .lock import exclusive
from .log import logger
from .run_config import (
    LabelConfig,
    PipelineData,
    RunConfig,
    config_from_args,
    load_config,
    resolved_teacher,
    teacher_config,
)
from .student import DataConfig, StudentRunConfig, solver_for, train_student
from .train import added_later_default
from .teacher import TEACHERS

__all__ = [
    "Pipeline",
    "STEPS",
    "Step",
    "RunConfig",
    "PipelineData",
    "LabelConfig",
    "load_config",
    "config_from_args",
    "teacher_config",
    "write_shards",
]

log = logger.getChild("pipeline")


# Settings that change how a step runs, never what it produces: a step is not redone for them.
NOT_IN_FINGERPRINT = ("checkpoint", "workers", "timeout")
# A student's train settings read only by the mini-batch loop (adamw), and only by the solver (lbfgs).
LOOP_ONLY = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup",
    "schedule",
    "clip",
    "patience",
    "eval_every",
    "keep",
    "max_steps",
)
SOLVER_ONLY = ("l2_c", "solver_iterations", "nb_scale")


def settings_of(cfg) -> Any:
    """A config as JSON-ready data for a fingerprint, without the keys of NOT_IN_FINGERPRINT (at any depth)."""

    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in NOT_IN_FINGERPRINT and not added_later_default(k, v)}
        return [strip(v) for v in d] if isinstance(d, list) else d

    return strip(to_dict(cfg))


@dataclass
class Step:
    """One pipeline step: what it reads, what it makes, and how."""

    name: str
    after: tuple[str, ...]  # the steps whose outputs it reads
    inputs: Callable[["Pipeline"], dict[str, Path]]  # name -> file or folder whose content matters
    settings: Callable[["Pipeline"], Any]  # content-only settings (no paths)
    outputs: Callable[["Pipeline"], list[Path]]
    run: Callable[["Pipeline"], None]
    enabled: Callable[["Pipeline"], bool] = lambda p: True
    every_rank: bool = True  # under torchrun: every rank takes part (DDP, shared labelling), or rank 0 alone


def fingerprint(settings: Any, inputs: dict[str, Path]) -> dict:
    """What a record holds: the settings' digest and each input's content digest, by name."""
    return {"settings": digest(settings), "inputs": {k: content_digest(v) for k, v in inputs.items()}}


class Records:
    """Step records: the fingerprint a unit of work had when it last finished."""

    @staticmethod
    def stale_reason(path: Path, fp: dict, outputs: list[Path]) -> str | None:
        """None when up to date, else why not, in words."""
        if not path.exists():
            return "it has not run yet"
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return f"its record {path} cannot be read"
        missing = [o for o in outputs if not o.exists()]
        if missing:
            return f"its output {missing[0]} is missing"
        if old.get("settings") != fp["settings"]:
            return "its settings changed"
        old_in = old.get("inputs", {})
        for name, d in fp["inputs"].items():
            if old_in.get(name) != d:
                return f"its input {name} changed"
        if set(old_in) != set(fp["inputs"]):
            return "its inputs changed"
        return None

    @staticmethod
    def write(path: Path, fp: dict, seconds: float) -> None:
        with atomic_write(path) as f:
            f.write(json.dumps({**fp, "seconds": seconds}))


class Pipeline:
    def __init__(self, cfg: RunConfig, progress: bool = True) -> None:
        self.cfg = cfg
        self.layout = Layout.of(cfg.work, cfg.teacher_dir)
        self.progress = progress
        self.steps = {s.name: s for s in STEPS}
        self._labels: list[str] | None = None
        from .distributed import world

        self.world = world()

    # -- the build system ---------------------------------------------------------------------------
    def stale_reason(self, name: str) -> str | None:
        step = self.steps[name]
        return Records.stale_reason(
            self.layout.record(name), fingerprint(step.settings(self), step.inputs(self)), step.outputs(self)
        )

    def up_to_date(self, name: str) -> bool:
        return self.stale_reason(name) is None

    def upstream(self, name: str) -> list[str]:
        """Every step `name` reads from, directly or not, in pipeline order."""
        seen: set[str] = set()
        todo = list(self.steps[name].after)
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo += self.steps[s].after
        return [s.name for s in STEPS if s.name in seen]

    def run(self, steps: list[str] | None = None, force: bool = False) -> None:
        """Run the chosen steps (default all) in order, each unless up to date; one run per work folder at a time.

        Under torchrun rank 0 holds the lock, decides which steps run and writes the step records;
        augmentation and the report run on rank 0 alone, the other steps on every rank."""
        import contextlib

        with exclusive(self.layout.work, "datadistill run") if self.world.main else contextlib.nullcontext():
            self._run(steps, force)

    def _run(self, steps: list[str] | None, force: bool) -> None:
        if steps is not None and not [s for s in steps if s]:
            raise ConfigError(f"--steps is empty: name some of {', '.join(self.steps)}, or leave it out")
        chosen = list(steps or self.steps)
        for s in chosen:
            if s not in self.steps:
                raise ConfigError(f"unknown step '{s}' (steps: {', '.join(self.steps)})")
        for s in chosen if steps else []:  # asked for by name, but not part of this config
            if not self.steps[s].enabled(self):
                why = "augment is null" if s == "augment" else f"teacher.kind {self.cfg.teacher.kind} is not fine-tuned"
                log.info(f"[{s}] not part of this run ({why}): nothing to do")
        chosen = [s.name for s in STEPS if s.name in chosen and s.enabled(self)]
        self._check_inputs()
        self._check_upstream(chosen, force)
        for name in chosen:
            step = self.steps[name]
            self._check_upstream([name], force, ran=True)  # again: a step run just now may have changed its inputs
            why = self.world.broadcast("forced" if force else self.stale_reason(name))  # rank 0 decides
            if why is None:
                log.info(f"[{name}] up to date, skipped")
                continue
            log.info(f"[{name}] running ({why})")
            t0 = time.perf_counter()
            if step.every_rank or self.world.main:
                step.run(self)
            self.world.barrier()  # the step's outputs exist for every rank
            if self.world.main:
                Records.write(
                    self.layout.record(name),
                    fingerprint(step.settings(self), step.inputs(self)),
                    time.perf_counter() - t0,
                )
            self.world.barrier()
            log.info(f"[{name}] done in {time.perf_counter() - t0:.0f}s")

    def _check_inputs(self) -> None:
        """Every data file the run reads must exist, and every student's settings fit the data (single
        texts or pairs), before the first step (not after an hour of teacher); so is the measuring time."""
        from .speed import measure_seconds

        measure_seconds()  # a bad DATADISTILL_MEASURE_SECONDS is refused now, not at the report
        d = self.cfg.data
        for key, path in [("data.train", d.train), ("data.dev", d.dev), ("data.test", d.test)] + [
            (f"data.unlabelled[{i}]", u) for i, u in enumerate(d.unlabelled)
        ]:
            p = resolve_data(path)
            if not p.is_file():
                raise DataError(
                    f"{path}: "
                    + ("is a folder, expected a file" if p.is_dir() else "file does not exist")
                    + f" ({key})"
                )
        if not self.cfg.students:
            return
        from .students import STUDENTS

        first = next(iter(ExampleReader(d.train, label_column=d.label_column, skip_bad_lines=True)), None)
        pair = first is not None and first.text_b is not None
        for name, s in self.cfg.students.items():
            cls, cfg_cls = STUDENTS.get(s.arch)
            try:
                cls.resolved_config(from_dict(cfg_cls, s.model), pair)
            except ConfigError as e:
                raise ConfigError(f"students.{name}.model: {e}") from None
        for name, run in self.student_runs():
            try:
                solver_for(run.student.arch, run.student.model, run.train.solver, run.train.nb_scale)
            except ConfigError as e:
                raise ConfigError(f"students.{name.removesuffix('_base')}: {e}") from None

    def _check_upstream(self, chosen: list[str], force: bool, ran: bool = False) -> None:
        """Refuse to run a chosen step while a step it reads from, not chosen, is out of date or will be
        once the chosen steps before it have run. The message names the stale step and what to run."""
        redo = set() if ran else {n for n in chosen if force or not self.up_to_date(n)}
        stale: dict[str, str] = {}
        for step in STEPS:  # in pipeline order, so a stale step makes the steps reading it stale too
            if step.name in chosen or not step.enabled(self):
                continue
            why = self.stale_reason(step.name)
            if not why and (changed := [u for u in step.after if u in redo or u in stale]):
                why = f"it reads step '{changed[0]}', which this run redoes"
            if why:
                stale[step.name] = why
        for name in chosen:
            for up in self.upstream(name):
                if up in stale:
                    need = [s for s in self.steps if s in chosen or (s in stale and s in self.upstream(name))]
                    raise StaleInputError(
                        f"step '{name}' reads the output of step '{up}', which is out of date "
                        f"({stale[up]}); run it too (--steps {','.join(need)}) or leave out --steps"
                    )

    # -- helpers the steps share ----------------------------------------------------------------------
    def teacher_kind(self):
        return TEACHERS.get(self.cfg.teacher.kind)

    def trains_teacher(self) -> bool:
        return self.teacher_kind().finetune is not None

    def teacher_inputs(self) -> dict[str, Path]:
        """The teacher as an input: its folder's model files when it is trained here, else nothing (its
        settings, e.g. an external command, are then part of the reading step's settings)."""
        return {"teacher": self.layout.teacher} if self.trains_teacher() else {}

    def teacher_settings(self) -> Any:
        return None if self.trains_teacher() else settings_of(self.cfg.teacher)

    def data_labels(self) -> list[str]:
        """The label map's order (from data.train): the order part.1's scores and every model use.
        Read once per run (labelling and the report both need it)."""
        if self._labels is None:
            _, _, _, lm = read_splits(self.cfg.data.train, label_column=self.cfg.data.label_column)
            self._labels = lm.labels
        return self._labels

    def load_teacher(self, batch_size: int, precision: str, device: str = "auto"):
        """The teacher of `teacher.kind`, answering in the data's label order."""
        return self.teacher_kind().load(
            self.cfg.teacher,
            self.layout.teacher,
            batch_size=batch_size,
            precision=precision,
            device=device,
            labels=self.data_labels(),
        )

    def model_names(self) -> list[str]:
        return [n for s in self.cfg.students for n in (f"{s}_base", s)]

    def student_runs(self) -> list[tuple[str, StudentRunConfig]]:
        """(model name, run config) of every baseline (part.0 only) and distilled (part.0 + part.1) student."""
        c, lay = self.cfg, self.layout
        runs = []
        for name, student in c.students.items():
            base_train, distill_train = c.train_configs(name)
            for suffix, part1, train_cfg in (("_base", [], base_train), ("", [str(lay.part1)], distill_train)):
                data = DataConfig(str(lay.part0), c.data.dev, c.data.test, part1, c.data.label_column)
                out = str(lay.student(name + suffix))
                runs.append((f"{name}{suffix}", StudentRunConfig(data, student.student(), train_cfg, out)))
        return runs


# -- the steps ------------------------------------------------------------------------------------------
def _run_teacher(p: Pipeline) -> None:
    d = p.cfg.data
    train, dev, _, lm = read_splits(d.train, d.dev, label_column=d.label_column)
    m = p.teacher_kind().finetune(p.cfg.teacher, train, dev, p.layout.teacher, lm, progress=p.progress)
    if p.world.main:
        (p.layout.teacher / "finetune_metrics.json").write_text(json.dumps(m, indent=1))


def _run_augment(p: Pipeline) -> None:
    stats = augment_file(
        p.cfg.data.train, p.layout.aug, p.cfg.augment, label_column=p.cfg.data.label_column, progress=p.progress
    )
    log.info(f"[augment] {stats.summary()}")


def _write_label_input(p: Pipeline) -> Path:
    """Augmented texts and the user's unlabelled texts in one file (texts only), capped as configured.
    Written anew every time, from the current inputs: labelling resumes only when its bytes are the same."""
    d = p.cfg.data
    rng = random.Random(d.seed)
    unl = [e for u in d.unlabelled for e in ExampleReader(u, require_label=False)]
    aug = list(ExampleReader(p.layout.aug, require_label=False)) if p.cfg.augment else []
    if unl and aug and d.unlabelled_ratio:
        keep = min(len(aug), int(len(unl) / d.unlabelled_ratio))
        aug = [aug[i] for i in sorted(rng.sample(range(len(aug)), keep))]
    rows = unl + aug
    if d.max_label_rows is not None and len(rows) > d.max_label_rows:
        rows = [rows[i] for i in sorted(random.Random(d.seed).sample(range(len(rows)), d.max_label_rows))]
    pair = any(e.text_b is not None for e in rows)
    with atomic_write(p.layout.label_input) as f:
        ExampleWriter(f, ["text_a"] + (["text_b"] if pair else [])).write_many(rows)
    log.info(f"[label] {len(rows)} texts to label ({len(unl)} unlabelled, {len(aug)} augmented kept)")
    return p.layout.label_input


def _teacher_on_dev(p: Pipeline, teacher, cache: Path | None = None) -> tuple[float, object, dict | None]:
    """Before labelling: the teacher, a classical model trained in seconds on the same labels and, with
    `label.classical_weight`, their ensemble (ensemble.py), measured on dev. Says plainly when what
    would label part.1 is no better than the classical model (accuracy; macro-F1 too for more than two
    classes, where a weak teacher hurts the minority classes first): students distilled from it would
    likely be worse than that simple model. Returns (the ensemble's weight, 0 for the teacher alone;
    the fitted classical member, or None; the ensemble's record for WORK/student/ensemble.json, or None)."""
    from .classical import ClassicalBaseline
    from .ensemble import CLOSE, auto_weight, blend, dev_score, fit_member

    lc = p.cfg.label
    auto = lc.classical_weight == "auto"  # the default: an ensemble where it pays, else the teacher alone
    metrics = p.layout.teacher / "finetune_metrics.json"
    check = p.trains_teacher() and metrics.is_file()
    if not check and lc.classical_weight == 0:
        return 0.0, None, None
    try:
        clf = ClassicalBaseline()
    except ConfigError as e:  # scikit-learn missing: the report says how to install it
        if lc.classical_weight != 0 and not auto:
            raise ConfigError(f"label.classical_weight {lc.classical_weight:g}: {e} (or set it to 0)") from None
        if auto:
            log.info(f"[label] ensemble: no classical model to blend ({e}); the teacher labels alone")
        return 0.0, None, None
    d = p.cfg.data
    train, dev, _, lm = read_splits(d.train, d.dev, label_column=d.label_column)
    pair = train[0].text_b is not None
    side_b = lambda rows: [e.text_b or "" for e in rows] if pair else None  # noqa: E731
    a_dev, b_dev = [e.text_a for e in dev], side_b(dev)
    gold = np.array([lm.id(e.label) for e in dev])
    known = lc.classical_weight == 0 and len(lm) == 2  # the teacher's dev accuracy is known: no scoring needed
    if not known:  # first, so a teacher that answers labels only costs one dev batch and no classical fit
        probs_T = teacher_probs(teacher, a_dev, b_dev, lc.batch_size, cache)
        if probs_T is None:
            if auto:
                log.info("[label] ensemble: this teacher gives no probabilities to average; it labels alone")
                return 0.0, None, None
            raise ConfigError(
                "label.classical_weight: this teacher gives no probabilities to average with the classical "
                "model's; set label.classical_weight to 0"
            )
        check_probs(probs_T, f"the teacher's probabilities on {d.dev}")
    clf.fit([e.text_a for e in train], [lm.id(e.label) for e in train], side_b(train))
    _, classical = dev_score(gold, clf.scores(a_dev, b_dev), lm.labels)
    who, weight, member, record = "the teacher", 0.0, None, None
    if known:
        mine = {"accuracy": json.loads(metrics.read_text())["dev_accuracy"], "macro_f1": None}
    else:
        _, mine = dev_score(gold, probs_T, lm.labels)
        if lc.classical_weight != 0:
            member = fit_member(train, lm)
            probs_C = member.probs(a_dev, b_dev)
            _, alone = dev_score(gold, probs_C, lm.labels)
            if not auto:
                weight, table = float(lc.classical_weight), []
            else:
                weight, table, gap = auto_weight(probs_T, probs_C, gold, lm.labels)
                if not table:
                    log.info(
                        f"[label] ensemble: the calibrated classical model is {gap * 100:.2f} points below the "
                        f"teacher on dev ({alone['accuracy'] * 100:.2f}, more than {CLOSE * 100:g}): the "
                        "teacher labels alone"
                    )
                else:
                    multi = len(lm.labels) > 2  # the weight is chosen by accuracy + macro-F1 there (ensemble.py)
                    log.info(
                        f"[label] ensemble weights on dev ({'accuracy / macro-F1' if multi else 'accuracy'}): "
                        + ", ".join(
                            f"{r['weight']:g}: {r['accuracy'] * 100:.2f}"
                            + (f" / {r['macro_f1'] * 100:.2f}" if multi else "")
                            for r in table
                        )
                    )
                    if not weight:
                        log.info("[label] ensemble: the classical model adds nothing on dev; the teacher labels alone")
            if weight:
                _, ens = dev_score(gold, blend(probs_T, probs_C, weight), lm.labels)
                record = {
                    "weight": weight,
                    "setting": lc.classical_weight,
                    "dev": {"teacher": mine, "classical_calibrated": alone, "ensemble": ens},
                    "grid": table,
                }
                log.info(
                    f"[label] ensemble teacher: (1 - {weight:g}) x teacher + {weight:g} x classical; dev accuracy "
                    f"{ens['accuracy'] * 100:.2f} (teacher {mine['accuracy'] * 100:.2f}, calibrated classical "
                    f"{alone['accuracy'] * 100:.2f})"
                )
                who, mine = "the ensemble teacher", ens
            else:
                member = None
    scores = [("accuracy", mine["accuracy"], classical["accuracy"])]
    if len(lm) > 2:
        scores.append(("macro-F1", mine["macro_f1"], classical["macro_f1"]))
    said = ", ".join(f"{what} {tv * 100:.2f} (classical {cv * 100:.2f})" for what, tv, cv in scores)
    if any(tv <= cv for _, tv, cv in scores):
        fix = (
            "Train the teacher longer or on longer texts (teacher.epochs, teacher.max_len), or use a stronger "
            "checkpoint (teacher.model)"
            if p.trains_teacher()
            else "Use a stronger teacher"
        )
        if lc.classical_weight == 0:
            fix += ', or average it with the classical model (label.classical_weight: "auto")'
        log.warning(
            f"[label] {who} on dev: {said}: it is not above a classical TF-IDF + linear SVM trained on the "
            f"same labels, so students distilled from it will likely be worse than that simple model. {fix}"
        )
    else:
        log.info(f"[label] {who} on dev: {said}")
    return weight, member, record


def teacher_probs(teacher, texts_a: list[str], texts_b: list[str] | None, batch_size: int, cache: Path | None = None):
    """The teacher's probabilities [N, C] on labelled texts (the label step's dev check), asked in
    batches of the label step's size (batched by length, in input order again); None when the teacher
    gives labels only, found at the first batch that has none (an external teacher may be paid by the
    text). With `cache` (the label step's score cache) texts scored before are read from it and new
    scores added: a label step run again, or another work folder sharing the teacher, does not score
    dev again."""
    from .data.cache import ScoreCache
    from .label import NoProbabilities, score_texts

    with exclusive(cache, "the teacher's score cache") if cache else contextlib.nullcontext():
        scores = ScoreCache(cache, teacher.describe()) if cache else None
        try:
            _, probs, _, _ = score_texts(teacher, texts_a, texts_b, batch_size, scores, need_probs=True)
        except NoProbabilities:
            return None
        finally:
            if scores is not None:
                scores.close()
    # the probabilities as the cache writes them (rounded), so every run decides on the same numbers
    return np.array([[float(v) for v in p.split()] for p in probs], dtype=np.float64)


def _run_label(p: Pipeline) -> None:
    from .label import label_file

    lay, lc, w = p.layout, p.cfg.label, p.world
    if w.main:
        lay.part0.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(resolve_data(p.cfg.data.train), lay.part0)  # same bytes: baselines stay up to date
        _write_label_input(p)
    w.barrier()
    src = lay.label_input
    teacher = p.load_teacher(lc.batch_size, lc.precision, device=w.device())
    cache = lay.teacher / score_cache_name(getattr(teacher, "precision", "fp32"))
    weight, member, record, refused = 0.0, None, None, None
    if w.main:
        try:
            weight, member, record = _teacher_on_dev(p, teacher, cache if lc.cache else None)
        except (ConfigError, DataError) as e:
            refused = (type(e).__name__, str(e))
    weight, refused = w.broadcast((weight, refused))
    if refused:  # every rank stops with rank 0's one line
        raise (DataError if refused[0] == "DataError" else ConfigError)(refused[1])
    if hasattr(teacher, "device"):
        log.info(f"[label] teacher on {teacher.device.type} in {teacher.precision}")
    stats = label_file(
        teacher,
        src,
        lay.teacher_scores if weight else lay.part1,
        batch_size=lc.batch_size,
        chunk_size=lc.chunk_size,
        progress=p.progress and w.main,
        cache=cache if lc.cache else None,
        world=w,
    )
    log.info(f"[label] {stats.summary()}")
    counts = stats.label_counts
    if weight and w.main:
        from .ensemble import blend_file

        counts = blend_file(lay.teacher_scores, lay.part1, member, weight, p.data_labels())
        log.info(f"[label] part.1 from the ensemble (classical weight {weight:g}): labels {counts}")
    if w.main:  # the record says what made part.1, so it changes only once part.1 has
        if weight:
            with atomic_write(lay.ensemble) as f:
                f.write(json.dumps(record, indent=1))
        else:
            lay.ensemble.unlink(missing_ok=True)
            lay.teacher_scores.unlink(missing_ok=True)  # an earlier ensemble run's: part.1 is the teacher's now
    w.barrier()
    if len(counts or {}) == 1 and len(p.data_labels()) > 1:
        who = "the ensemble teacher" if weight else "the teacher"
        log.warning(
            f"[label] {who} gave every text the same label ({next(iter(counts))}): "
            f"students distilled from it learn one class; check the teacher (its dev accuracy above)"
        )


def _student_unit(p: Pipeline, run: StudentRunConfig) -> tuple[Path, dict, list[Path]]:
    """One model's record, fingerprint and output: its settings (no paths) and the files it trains on."""
    lay = p.layout
    inputs = {"part.0": lay.part0, "data.dev": Path(run.data.dev)}
    inputs.update({"part.1": lay.part1} if run.data.teacher_labelled else {})
    # "auto" as it resolves for this student: a CNN's record stays as it was, a linear bag's changes
    train = dataclasses.replace(run.train, solver=solver_for(run.student.arch, run.student.model, run.train.solver))
    # keys the student's solver does not read: changing them leaves the student as it is
    unused = LOOP_ONLY if train.solver == "lbfgs" and not _fell_back(Path(run.output)) else SOLVER_ONLY
    train_settings = {k: v for k, v in to_dict(train).items() if k not in unused}
    settings = settings_of({"student": run.student, "train": train_settings, "label_column": run.data.label_column})
    name = Path(run.output).name
    return lay.steps / f"students.{name}.json", fingerprint(settings, inputs), [Path(run.output) / "model.safetensors"]


def _fell_back(folder: Path) -> bool:
    """Whether a linear bag too wide to solve was trained by the loop (its metrics say so)."""
    try:
        return json.loads((folder / "metrics.json").read_text()).get("chosen", {}).get("solver") == "adamw"
    except (OSError, ValueError, AttributeError):
        return False


def _run_students(p: Pipeline) -> None:
    w = p.world
    if p.cfg.shards and w.main:
        write_shards([p.layout.part0, p.layout.part1], p.layout.shards, p.cfg.shards, seed=p.cfg.data.seed)
    for name, run in p.student_runs():
        record, fp, outputs = _student_unit(p, run)
        # part.1 is rewritten when the teacher or the label input changes: the baseline (part.0 only) is not
        if w.broadcast(Records.stale_reason(record, fp, outputs)) is None:
            log.info(f"[students] {name}: up to date")
            continue
        log.info(f"[students] training {name} ({'part.0 + part.1' if run.data.teacher_labelled else 'part.0 only'})")
        t0 = time.perf_counter()
        train_student(run, progress=p.progress)  # DDP on every rank; rank 0 saves
        if w.main:
            _, fp, _ = _student_unit(p, run)  # as trained: a bag that fell back to the loop keeps its settings
            Records.write(record, fp, time.perf_counter() - t0)
        w.barrier()


def _run_report(p: Pipeline) -> None:
    from .report import write_report

    teacher = p.load_teacher(batch_size=64, precision=p.cfg.label.precision, device="cpu")
    write_report(p.layout, p.cfg.data, p.model_names(), teacher, p.data_labels())


def _students_settings(p: Pipeline) -> Any:
    c = p.cfg
    run = settings_of(list(c.run_train_configs()))
    students = {}
    for name, s in c.students.items():
        own = settings_of(list(c.train_configs(name)))
        # a student trained as the run says is recorded as before students had settings of their own:
        # finished runs stay up to date, and keys that change nothing redo nothing
        students[name] = s.student() if own == run else {"student": s.student(), "train": own}
    return settings_of([students, c.train, c.distill, c.shards, c.data.label_column])


def _teacher_inputs(p: Pipeline) -> dict[str, Path]:
    """train, dev and, when the base model is a local folder, that folder by content (not its path)."""
    inputs = {"data.train": Path(p.cfg.data.train), "data.dev": Path(p.cfg.data.dev)}
    if Path(p.cfg.teacher.model).is_dir():
        inputs["teacher.model"] = Path(p.cfg.teacher.model)
    return inputs


def _teacher_settings(p: Pipeline) -> Any:
    settings = settings_of(resolved_teacher(p.cfg.teacher))  # what runs here: "auto" values resolved
    if Path(p.cfg.teacher.model).is_dir():
        settings.pop("model")  # an input, by content
    return [settings, p.cfg.data.label_column]


STEPS: list[Step] = [
    Step(
        "teacher",
        after=(),
        inputs=_teacher_inputs,
        settings=_teacher_settings,
        outputs=lambda p: [p.layout.teacher / "teacher.json"],
        run=_run_teacher,
        enabled=lambda p: p.trains_teacher(),
    ),
    Step(
        "augment",
        after=(),
        inputs=lambda p: {"data.train": Path(p.cfg.data.train)},
        settings=lambda p: settings_of(p.cfg.augment),
        outputs=lambda p: [p.layout.aug],
        run=_run_augment,
        enabled=lambda p: p.cfg.augment is not None,
        every_rank=False,
    ),
    Step(
        "label",
        after=("teacher", "augment"),
        inputs=lambda p: {
            **p.teacher_inputs(),
            **({"augmented": p.layout.aug} if p.cfg.augment else {}),
            **{f"data.unlabelled[{i}]": Path(u) for i, u in enumerate(p.cfg.data.unlabelled)},
            "data.train": Path(p.cfg.data.train),
            **({"data.dev": Path(p.cfg.data.dev)} if p.cfg.label.classical_weight != 0 else {}),  # it chooses w
        },
        settings=lambda p: [
            settings_of(p.cfg.label),
            p.teacher_settings(),
            p.cfg.data.unlabelled_ratio,
            p.cfg.data.max_label_rows,
            p.cfg.data.seed,
        ],
        outputs=lambda p: [p.layout.part0, p.layout.part1],
        run=_run_label,
    ),
    Step(
        "students",
        after=("label",),
        inputs=lambda p: {"part.0": p.layout.part0, "part.1": p.layout.part1, "data.dev": Path(p.cfg.data.dev)},
        settings=_students_settings,
        outputs=lambda p: [p.layout.student(n) / "model.safetensors" for n in p.model_names()],
        run=_run_students,
    ),
    Step(
        "report",
        after=("teacher", "students"),
        inputs=lambda p: {
            **p.teacher_inputs(),
            "data.test": Path(p.cfg.data.test),
            "part.0": p.layout.part0,  # the classical baseline trains on it
            **{f"{n}/metrics.json": p.layout.student(n) / "metrics.json" for n in p.model_names()},
        },
        settings=lambda p: [
            p.teacher_settings(),
            p.cfg.label.precision,
            p.cfg.label.classical_weight,
            p.cfg.data.label_column,
        ],
        outputs=lambda p: [p.layout.report / "report.json", p.layout.report / "report.md"],
        run=_run_report,
        every_rank=False,
    ),
]


def write_shards(parts: list[Path], out_dir: Path, n: int, seed: int = 1) -> list[Path]:
    """part.0 + part.1 rows shuffled into `n` files of equal size (±1 row), each with the header of part.1.

    part.0 rows get empty probs/logits columns so every shard has one format."""
    with open(parts[1], encoding="utf-8") as f:  # the header only, not the whole of part.1
        header1 = f.readline().rstrip("\r\n").split("\t")
    rows = [ex for part in parts for ex in ExampleReader(part)]
    if n > len(rows):
        raise ConfigError(f"shards: {n} shards for {len(rows)} rows; at most one shard per row")
    random.Random(seed).shuffle(rows)
    if out_dir.exists():  # shards of an earlier run (another N) must not stay beside the new ones
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = out_dir / f"part-{i:05d}"
        with atomic_write(path) as f:
            ExampleWriter(f, header1).write_many(rows[i::n])
        paths.append(path)
    return paths
