"""Step 3: train a student from a run config: data -> vocabulary -> network -> training loop -> model folder.

Training data follows the seed: `data.train` is part.0 (the original labelled data), and
`data.teacher_labelled` lists part.1 files (teacher hard labels, with `probs`/`logits` columns when
the teacher kept them).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from .batching import in_length_order
from .checkpoint import remove_checkpoint, run_id
from .config import ConfigError, apply_overrides, from_dict, load_json, to_dict
from .data.io import Example, ExampleReader, read_splits
from .errors import DataError
from .data.labels import LabelMap
from .evaluate import classification_metrics, format_metrics
from .log import logger
from .losses import LOSSES
from .registry import unknown_name_message
from .rows import Row, RowBuilder, RowTable
from .students import STUDENTS, build_student
from .students.base import Dims
from .text.features import FeatureConfig, Featurizer
from .text.tokenize import get_tokenizer
from .train import TrainConfig, added_later_default, fit, resolve_device

log = logger.getChild("student")

CHECKPOINT = ".train_checkpoint.pt"  # in the model folder while training; removed once the model is saved


@dataclass
class DataConfig:
    train: str = ""  # part.0: gold-labelled TSV/JSONL
    dev: str = ""  # for early stopping and model selection
    test: str | None = None  # reported, never used to select
    teacher_labelled: list[str] = field(default_factory=list)  # part.1 files (their column is always `label`)
    label_column: str = "label"  # of train, dev and test
    skip_bad_lines: bool = False

    def validate(self) -> None:
        if not self.train:
            raise ConfigError("train is required: the path of the labelled training file (part.0)")
        if not self.dev:
            raise ConfigError("dev is required: a labelled file to select the best checkpoint on")


@dataclass
class StudentConfig:
    arch: str = "bow"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: dict = field(default_factory=dict)  # the architecture's own hyper-parameters
    pretokenized: bool = False  # use a file's tokens_a column instead of re-tokenizing

    def __post_init__(self) -> None:
        """Features left unset take the architecture's measured best (Student.default_features), and
        the model's hyper-parameters are spelled out in full (what --print-config shows)."""
        if self.arch in STUDENTS:
            cls, cfg_cls = STUDENTS.get(self.arch)
            if isinstance(self.model, dict) and set(self.model) <= {f.name for f in dataclasses.fields(cfg_cls)}:
                self.model = {**to_dict(cfg_cls()), **self.model}
            for key, value in cls.default_features.items():
                if getattr(self.features, key) is None:
                    setattr(self.features, key, list(value) if isinstance(value, list) else value)

    def validate(self) -> None:
        if self.arch not in STUDENTS:
            raise ConfigError(unknown_name_message("student", self.arch, STUDENTS.names()))
        cls, cfg_cls = STUDENTS.get(self.arch)
        from_dict(cfg_cls, self.model, f"model ({self.arch})")
        f = self.features
        if f.ngrams and f.ngram_buckets is not None and f.ngram_buckets < 2:  # ngrams may be the student's default
            raise ConfigError(
                f"features.ngram_buckets must be at least 2 when n-grams are used (the {self.arch} student's "
                f"features.ngrams are {f.ngrams}), got {f.ngram_buckets}; set features.ngrams to [] for none"
            )
        if cls.positional_ngrams and self.features.ngrams not in ([], [2]):
            raise ConfigError(
                f"the {self.arch} student reads position-aligned bigrams: features.ngrams must be "
                f"[] or [2], got {self.features.ngrams}"
            )


@dataclass
class StudentRunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: str = "work/student/model"

    def validate(self) -> None:
        if not self.output.strip():
            raise ConfigError("output must not be empty: it names the model folder to write")


def load_run_config(path: str | Path | None, overrides: list[str] = ()) -> StudentRunConfig:
    raw = load_json(path) if path else {}
    raw = apply_overrides(raw, list(overrides))
    return from_dict(StudentRunConfig, raw, str(path) if path else "config")


def collate_rows(collate: Callable, rows: list[Row], num_labels: int, device: torch.device) -> dict:
    """A student batch: the featurizer's tensors plus labels and, where rows have them, teacher scores."""
    batch = collate([r.a for r in rows], [r.b for r in rows] if rows[0].b is not None else None)
    batch["labels"] = torch.tensor([r.label for r in rows], dtype=torch.long)
    has_T = torch.tensor([r.has_T for r in rows])
    batch["has_T"] = has_T
    if has_T.any():
        zeros = [0.0] * num_labels
        batch["probs_T"] = torch.tensor([r.probs_T or zeros for r in rows], dtype=torch.float)
        batch["logits_T"] = torch.tensor([r.logits_T or zeros for r in rows], dtype=torch.float)
        batch["has_logits"] = torch.tensor([r.logits_T is not None for r in rows])
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def predict_logits(
    model: nn.Module, collate: Callable, rows: RowTable, num_labels: int, batch_size: int = 256
) -> np.ndarray:
    """Logits [N, C] in input order (batched by length)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = in_length_order(
        rows.lengths(),
        batch_size,
        lambda idx: model(collate_rows(collate, [rows[i] for i in idx], num_labels, device)).float().cpu().numpy(),
    )
    model.train(was_training)
    return out if len(rows) else np.zeros((0, num_labels), dtype=np.float32)


def epoch_indices(gold_rows: np.ndarray, part0_share: float) -> np.ndarray:
    """All teacher-labelled rows once, and gold rows repeated so they are >= part0_share of the epoch.
    gold_rows: True for part.0 rows [N]."""
    gold_rows = np.asarray(gold_rows, dtype=bool)
    gold = np.flatnonzero(gold_rows).astype(np.int64)
    teach = np.flatnonzero(~gold_rows).astype(np.int64)
    reps = 1
    if len(gold) and len(teach) and part0_share > 0:
        reps = max(1, math.ceil(part0_share * len(teach) / ((1 - part0_share) * len(gold))))
    return np.concatenate([teach] + [gold] * reps)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on embedding tables and biases."""
    tables = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))}
    decay = [p for p in model.parameters() if p.ndim > 1 and id(p) not in tables]
    rest = [p for p in model.parameters() if p.ndim <= 1 or id(p) in tables]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _run_id(
    model: nn.Module, cfg: TrainConfig, train_rows: RowTable, dev_rows: RowTable, features: FeatureConfig
) -> str:
    """Settings, features (n-gram orders, buckets, hash: the rows hold token ids only), initial weights
    and rows (token ids, labels, teacher scores): what a checkpoint must match."""
    settings = {
        k: v for k, v in to_dict(cfg).items() if k not in ("device", "checkpoint") and not added_later_default(k, v)
    }
    parts: list = [type(model).__name__, settings]
    parts.append(to_dict(features))
    parts += [v.detach().cpu().numpy() for v in model.state_dict().values()]
    parts.append(train_rows.ids)
    for rows in (train_rows, dev_rows):
        parts += [rows.start, rows.length, rows.label, rows.gold, rows.probs, rows.logits]
    return run_id(*parts)


def fit_student(
    model: nn.Module,
    featurizer: Featurizer,
    train_rows: RowTable,
    dev_rows: RowTable,
    num_labels: int,
    cfg: TrainConfig,
    progress: bool = True,
    checkpoint: str | Path | None = None,
):
    """The student's side of the training loop: its batches, its loss (hard or against the teacher's
    scores) and its dev accuracy; `train.fit` does the rest."""
    from .distributed import world

    device = resolve_device(world().device(cfg.device))
    rid = _run_id(model, cfg, train_rows, dev_rows, featurizer.cfg) if checkpoint else ""
    model.to(device)
    loss_fn = LOSSES.get(cfg.loss)
    dev_gold = dev_rows.label
    index = epoch_indices(train_rows.gold, cfg.part0_share)
    log_prior = None
    if cfg.logit_adjust:  # the labels of an epoch's rows, gold repeats counted; +1 keeps an absent class finite
        counts = np.bincount(train_rows.label[index], minlength=num_labels) + 1.0
        log_prior = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float, device=device)  # [C]

    def batch_loss(ids: np.ndarray, net: nn.Module):
        batch = collate_rows(featurizer.collate, [train_rows[i] for i in ids], num_labels, device)
        logits_S = net(batch)  # [B, C]
        if log_prior is not None:
            logits_S = logits_S + log_prior  # the loss sees the prior; the saved network answers without it
        loss = loss_fn(
            logits_S,
            batch["labels"],
            probs_T=batch.get("probs_T"),
            logits_T=batch.get("logits_T"),
            has_T=batch["has_T"],
            has_logits=batch.get("has_logits"),
            alpha=cfg.alpha,
            temperature=cfg.temperature,
        )
        return loss, (logits_S.argmax(-1) == batch["labels"]).float().mean().item()

    def evaluate() -> float:
        if not dev_rows:
            return 0.0
        z = predict_logits(model, featurizer.collate, dev_rows, num_labels, cfg.eval_batch_size)
        return float((z.argmax(-1) == dev_gold).mean())

    fallback = False
    if solver_for(type(model).arch, to_dict(model.cfg), cfg.solver, cfg.nb_scale) == "lbfgs":
        from .solve import HISTORY_BYTES, MIN_HISTORY, history_for

        n_weights = sum(n for _, n in model.linear_tables()) * num_labels
        history = history_for(n_weights)
        if history is not None:
            return _solve_student(
                model, featurizer, train_rows, num_labels, cfg, index, log_prior, evaluate, progress, history
            )
        why = (
            f"the linear bag has {n_weights:,} weights ({num_labels} labels), too many for L-BFGS to keep "
            f"{MIN_HISTORY} steps of history in {HISTORY_BYTES / 1024**3:.0f} GB"
        )
        if cfg.solver == "lbfgs":
            raise ConfigError(f"train.solver lbfgs: {why}: set train.solver to adamw or lower features.ngram_buckets")
        log.warning(
            f"{why}: trained by the mini-batch loop (adamw) instead" + (", without nb_scale" if cfg.nb_scale else "")
        )
        fallback = True
    lengths = train_rows.lengths()[index]
    result = fit(
        model,
        batch_loss,
        evaluate,
        lengths,
        cfg,
        index=index,
        param_groups=_param_groups(model, cfg.weight_decay),
        checkpoint=checkpoint,
        run_id=rid,
        what="student training",
        progress=progress,
    )
    if fallback:  # the pipeline's record then holds the loop's settings (pipeline._student_unit)
        result.chosen["solver"] = "adamw"
    return result


def solver_for(arch: str, params: dict, solver: str, nb_scale: bool | None = False) -> str:
    """train.solver made concrete for a student: under "auto", "lbfgs" where it is linear in its weights
    (a linear bag), else "adamw"; "lbfgs", or nb_scale true (the solver's), for one that is not is refused."""
    linear = STUDENTS.get(arch)[0].linear(params)
    if solver == "lbfgs" and not linear:
        raise ConfigError(
            f"solver lbfgs solves a student linear in its weights (a bow with emb_dim 0), and this {arch} is not: "
            "set train.solver to auto or adamw"
        )
    chosen = "lbfgs" if linear and solver != "adamw" else "adamw"
    if nb_scale and chosen != "lbfgs":
        raise ConfigError(
            f"train.nb_scale scales a solved linear bag's inputs, and this {arch} is trained by the "
            "mini-batch loop: remove nb_scale (or set it to null) for this student"
        )
    return chosen


def _solve_student(
    model: nn.Module,
    featurizer: Featurizer,
    train_rows: RowTable,
    num_labels: int,
    cfg: TrainConfig,
    index: np.ndarray,
    log_prior: torch.Tensor | None,
    evaluate: Callable[[], float],
    progress: bool,
    history: int,
):
    """fit_student's full-batch path (solve.py): the same loss over the same epoch rows, on CPU."""
    from .solve import L2_C_GRID, design_matrix, label_mass, nb_scale, solve_linear, solve_path, targets

    model.cpu()
    cpu = torch.device("cpu")
    n, chunk = len(train_rows), 1024
    batches = (
        collate_rows(featurizer.collate, [train_rows[i] for i in range(s, min(s + chunk, n))], num_labels, cpu)
        for s in range(0, n, chunk)
    )
    t0 = time.perf_counter()
    x = design_matrix(model, batches, n)  # [N, D]
    log.info(f"design: {n:,} rows, {x.values().numel():,} non-zero inputs ({time.perf_counter() - t0:.1f}s)")
    t = {k: (v[torch.from_numpy(index)] if v is not None else None) for k, v in targets(train_rows, num_labels).items()}
    rows = torch.from_numpy(index)
    prior = log_prior.cpu() if log_prior is not None else None
    loss_fn = LOSSES.get(cfg.loss)

    def loss_of(logits_S: torch.Tensor) -> torch.Tensor:  # [N, C] -> the loss over one epoch's rows
        z = logits_S[rows]
        if prior is not None:
            z = z + prior
        return loss_fn(
            z,
            t["labels"],
            probs_T=t.get("probs_T"),
            logits_T=t.get("logits_T"),
            has_T=t["has_T"],
            has_logits=t.get("has_logits"),
            alpha=cfg.alpha,
            temperature=cfg.temperature,
        )

    scale = None
    if cfg.nb_scale or (cfg.nb_scale is None and not model.dims.pair):  # tables' inputs; similarity keeps 1
        tables = [torch.full((rows_,), name != "similar.weight") for name, rows_ in model.linear_tables()]
        scale = nb_scale(x, label_mass(t, rows, n, num_labels), torch.cat(tables))
        log.info(f"nb_scale: inputs scaled by their naive-Bayes log-count ratio (largest {scale.max().item():.2f})")
    n = len(index)
    if cfg.l2_c == "auto":
        result = solve_path(
            model, x, loss_of, evaluate, n, L2_C_GRID, cfg.solver_iterations, progress, history, scale=scale
        )
    else:
        result = solve_linear(
            model, x, loss_of, evaluate, n, cfg.l2_c, cfg.solver_iterations, progress, history, scale=scale
        )
    result.chosen["nb_scale"] = scale is not None  # what null became (metrics.json)
    return result


def evaluate_rows(model, featurizer: Featurizer, rows: RowTable, label_map: LabelMap, batch_size: int = 256) -> dict:
    logits = predict_logits(model, featurizer.collate, rows, len(label_map), batch_size)
    return classification_metrics(rows.label, logits.argmax(-1), label_map.labels)


def _part1_stream(path: str, label_map: LabelMap, d: DataConfig, keep: set[int] | None = None) -> Iterator[Example]:
    """part.1's rows, streamed (`keep`: only these row numbers, 0-based), bad-line summary logged at the end.
    part.1 is the label step's file: its teacher labels are in `label`, whatever the gold data calls its column."""
    reader = ExampleReader(path, label_column="label", label_map=label_map, skip_bad_lines=d.skip_bad_lines)
    for i, ex in enumerate(reader):
        if keep is None or i in keep:
            yield ex
    if reader.stats.skipped:
        log.warning(reader.stats.summary())


def _part1_keep(d: DataConfig, label_map: LabelMap, cfg: TrainConfig) -> list[set[int] | None]:
    """Per part.1 file, the rows train.min_confidence / train.balance_part1 keep (None: all), from a
    first pass over labels and scores only."""
    from .select import confidence, select_indices

    if not d.teacher_labelled or (cfg.min_confidence <= 0 and not cfg.balance_part1):
        return [None] * len(d.teacher_labelled)
    labels, conf, owner = [], [], []
    for f, path in enumerate(d.teacher_labelled):
        for i, ex in enumerate(_part1_stream(path, label_map, d)):
            labels.append(ex.label)
            conf.append(confidence(ex))
            owner.append((f, i))
    kept, summary = select_indices(labels, conf, label_map, cfg.min_confidence, cfg.balance_part1, cfg.seed)
    log.info(summary)
    keep: list[set[int]] = [set() for _ in d.teacher_labelled]
    for k in kept:
        f, i = owner[k]
        keep[f].add(i)
    return keep


def _training_sides(featurizer: Featurizer, rows: RowTable, batch_size: int = 1024) -> Iterator[tuple]:
    """(ids [B, L], ngrams [B, G] or None) of every training text, a batch at a time (both sides of pairs)."""
    for start in range(0, len(rows), batch_size):
        batch = [rows[i] for i in range(start, min(start + batch_size, len(rows)))]
        for side in ("a", "b") if rows.pair else ("a",):
            arrays = featurizer.arrays([getattr(r, side) for r in batch])
            yield arrays["ids_a"], arrays.get("ngr_a")


def train_student(cfg: StudentRunConfig, progress: bool = True, command: str | None = None) -> dict:
    """Train, select on dev, report test, save the model folder at `cfg.output`. Returns the metrics."""
    from .lock import exclusive

    out = Path(cfg.output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output: {out} is a file; it names the model folder to write")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"output: {out} lies under {parent}, which is a file")
    if out.is_dir():  # a model folder may be written again; a folder of other files is not ours to fill
        from .modelio import REQUIRED

        foreign = sorted(
            f.name for f in out.iterdir() if not f.name.startswith(".") and f.name not in (*REQUIRED, "metrics.json")
        )
        if foreign or (
            (out / "config.json").is_file()
            and "datadistill_version" not in (out / "config.json").read_text(encoding="utf-8", errors="replace")
        ):
            raise ConfigError(
                f"output: {out} holds files that are not a datadistill model "
                f"({', '.join(foreign[:3]) or 'config.json'}); choose a new or empty folder"
            )
    import contextlib

    from .distributed import world

    w = world()  # under torchrun: DDP, rank 0 writes the folder
    with exclusive(out, "student training") if w.main else contextlib.nullcontext():
        return _train_student(cfg, progress and w.main, command)


def _train_student(cfg: StudentRunConfig, progress: bool, command: str | None) -> dict:
    from .modelio import save_model

    t0 = time.perf_counter()
    d, s = cfg.data, cfg.student
    train_ex, dev_ex, test_ex, label_map = read_splits(d.train, d.dev, d.test, d.label_column, d.skip_bad_lines)
    pair = train_ex[0].text_b is not None
    if s.features.ngram_buckets is None:
        # a copy: the caller's config (which the pipeline's students may share, and whose fingerprint it
        # records) keeps null, the model folder the value used
        buckets = STUDENTS.get(s.arch)[0].default_buckets(s.model, pair)
        s = dataclasses.replace(s, features=dataclasses.replace(s.features, ngram_buckets=buckets))
        cfg = dataclasses.replace(cfg, student=s)
    keep = _part1_keep(d, label_map, cfg.train)
    # part.1 streams through the builder: flat arrays of token ids, no per-row objects (rows.py)
    build = RowBuilder(get_tokenizer(s.features.tokenizer), label_map, s.features.max_len, s.pretokenized, pair)
    build.add(train_ex, gold=True, count=True)
    n_part1 = sum(
        build.add(_part1_stream(p, label_map, d, k), gold=False, count=True, check_scores=p)
        for p, k in zip(d.teacher_labelled, keep)
    )
    build.add(dev_ex, gold=True, count=False)
    build.add(test_ex, gold=True, count=False)
    vocab = build.vocab(min_freq=s.features.vocab_min_freq, max_size=s.features.vocab_max_size)
    featurizer = Featurizer(s.features, vocab)
    train_t, *part1_t, dev_t, test_t = build.tables(vocab)
    train_rows = RowTable.concat([train_t, *part1_t])
    log.info(
        f"data: part.0 {len(train_ex)} rows, part.1 {n_part1} rows, dev {len(dev_ex)}, test {len(test_ex)}; "
        f"{len(label_map)} labels; vocabulary {len(vocab)} ({s.features.tokenizer}); {time.perf_counter() - t0:.1f}s"
    )

    dims = Dims(
        vocab_size=len(vocab),
        num_labels=len(label_map),
        ngram_buckets=s.features.ngram_buckets if s.features.ngrams else 0,
        pair=pair,
    )
    torch.manual_seed(cfg.train.seed)  # weight initialisation is part of the seeded run
    model = build_student(s.arch, s.model, dims)
    if hasattr(model, "fit_idf"):  # a TF-IDF bag reads its IDF off the training texts (part.0 + part.1)
        model.fit_idf(_training_sides(featurizer, train_rows))
    n_params = sum(p.numel() for p in model.parameters())
    log.info(f"student {s.arch}: {n_params:,} parameters")
    ckpt = Path(cfg.output) / CHECKPOINT if cfg.train.checkpoint else None
    result = fit_student(
        model,
        featurizer,
        train_rows,
        dev_t,
        len(label_map),
        cfg.train,
        progress=progress,
        checkpoint=ckpt,
    )
    model.cpu().eval()
    metrics = {
        "arch": s.arch,
        "parameters": n_params,
        "train_seconds": result.seconds,
        "steps": result.steps,
        "best_step": result.best_step,
        **({"averaged": result.averaged} if result.averaged else {}),
        "history": result.history,
        **({"chosen": result.chosen} if result.chosen else {}),
        "dev": evaluate_rows(model, featurizer, dev_t, label_map),
        "config": to_dict(cfg),
    }
    if len(test_t):
        metrics["test"] = evaluate_rows(model, featurizer, test_t, label_map)
    from .distributed import world

    if world().main:
        save_model(
            cfg.output, model, featurizer, label_map, params=to_dict(model.cfg), metrics=metrics, command=command
        )
    world().barrier()  # the folder is complete for every rank when this returns
    if ckpt and world().main:
        remove_checkpoint(ckpt)
    log.info(f"dev:  {format_metrics(metrics['dev']).splitlines()[0]}")
    if "test" in metrics:
        log.info(f"test: {format_metrics(metrics['test']).splitlines()[0]}")
    log.info(f"saved {cfg.output} ({time.perf_counter() - t0:.1f}s in all)")
    return metrics


def evaluate_folder(
    folder: str | Path, data: str | Path, label_column: str = "label", positive: str | None = None
) -> dict:
    """Metrics of the model in `folder` on the labelled file `data` (with the ranking view of the
    positive class for two-class tasks: see evaluate.task_metrics)."""
    from .evaluate import task_metrics

    from .predict import Predictor, check_pair_columns

    pred = Predictor(folder)
    exs = list(ExampleReader(data, label_column=label_column, label_map=pred.label_map))
    if not exs:
        raise DataError(f"{data}: no examples (only a header?)")
    check_pair_columns(pred, data, exs[0].text_b is not None, folder)
    texts_b = [ex.text_b or "" for ex in exs] if pred.pair else None
    probs = pred.predict_proba([ex.text_a for ex in exs], texts_b)
    gold = np.array([pred.label_map.id(ex.label) for ex in exs])
    try:
        return task_metrics(gold, probs, pred.labels, positive, exs)
    except ValueError as e:  # an unknown --positive label
        raise DataError(f"--positive: {e}") from None


def dump_json(obj, path: str | Path) -> None:
    """Standard JSON: an infinite or undefined number (a pair-order ratio with nothing reversed) as null."""
    from .evaluate import finite

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(finite(obj), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
