"""Step 3: train a student from a run config: data -> vocabulary -> network -> training loop -> model folder.

Training data follows the seed: `data.train` is part.0 (the original labelled data), and
`data.teacher_labelled` lists part.1 files (teacher hard labels, with `probs`/`logits` columns when
the teacher kept them).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoint import remove_checkpoint
from .config import ConfigError, apply_overrides, from_dict, load_json, to_dict
from .data.io import Example, ExampleReader
from .data.labels import LabelMap
from .evaluate import classification_metrics, format_metrics
from .registry import unknown_name_message
from .students import STUDENTS, build_student
from .students.base import Dims
from .text.features import FeatureConfig, Featurizer
from .text.tokenize import Tokenizer, get_tokenizer
from .text.vocab import Vocab
from .train import Row, TrainConfig, fit, predict_logits

CHECKPOINT = ".train_checkpoint.pt"  # in the model folder while training; removed once the model is saved


@dataclass
class DataConfig:
    train: str = ""                                   # part.0: gold-labelled TSV/JSONL
    dev: str = ""                                     # for early stopping and model selection
    test: str | None = None                           # reported, never used to select
    teacher_labelled: list[str] = field(default_factory=list)  # part.1 files
    label_column: str = "label"
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
    model: dict = field(default_factory=dict)        # the architecture's own hyper-parameters
    pretokenized: bool = False                       # use a file's tokens_a column instead of re-tokenizing

    def validate(self) -> None:
        if self.arch not in STUDENTS:
            raise ConfigError(unknown_name_message("student", self.arch, STUDENTS.names()))
        cls, cfg_cls = STUDENTS.get(self.arch)
        from_dict(cfg_cls, self.model, f"model ({self.arch})")
        if cls.positional_ngrams and self.features.ngrams not in ([], [2]):
            raise ConfigError(f"the {self.arch} student reads position-aligned bigrams: features.ngrams must be "
                              f"[] or [2], got {self.features.ngrams}")


@dataclass
class StudentRunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: str = "work/student/model"


def load_run_config(path: str | Path | None, overrides: list[str] = ()) -> StudentRunConfig:
    raw = load_json(path) if path else {}
    raw = apply_overrides(raw, list(overrides))
    return from_dict(StudentRunConfig, raw, str(path) if path else "config")


def _read(path: str, label_map: LabelMap | None, data: DataConfig, log) -> list[Example]:
    reader = ExampleReader(path, label_column=data.label_column, label_map=label_map,
                           skip_bad_lines=data.skip_bad_lines)
    rows = list(reader)
    if reader.stats.skipped:
        log(reader.stats.summary())
    return rows


def _tokens(tokenizer: Tokenizer, ex: Example, pretokenized: bool) -> tuple[list[str], list[str] | None]:
    ta = ex.tokens_a if pretokenized and ex.tokens_a else tokenizer.tokenize(ex.text_a)
    tb = None
    if ex.text_b is not None:
        tb = ex.tokens_b if pretokenized and ex.tokens_b else tokenizer.tokenize(ex.text_b)
    return ta, tb


def _rows(featurizer: Featurizer, exs: list[Example], toks: list, label_map: LabelMap, gold: bool) -> list[Row]:
    rows = []
    for ex, (ta, tb) in zip(exs, toks):
        rows.append(Row(a=featurizer.encode_tokens(ta), b=featurizer.encode_tokens(tb) if tb is not None else None,
                        label=label_map.id(ex.label), probs_T=ex.probs, logits_T=ex.logits, gold=gold))
    return rows


def evaluate_rows(model, featurizer: Featurizer, rows: list[Row], label_map: LabelMap, batch_size: int = 256) -> dict:
    logits = predict_logits(model, featurizer.collate, rows, len(label_map), batch_size)
    return classification_metrics(np.array([r.label for r in rows]), logits.argmax(-1), label_map.labels)


def train_student(cfg: StudentRunConfig, progress: bool = True, command: str | None = None, log=None) -> dict:
    """Train, select on dev, report test, save the model folder at `cfg.output`. Returns the metrics."""
    from .modelio import save_model

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    d, s = cfg.data, cfg.student
    train_ex = _read(d.train, None, d, log)
    label_map = LabelMap.from_labels(ex.label for ex in train_ex)
    dev_ex = _read(d.dev, label_map, d, log)
    test_ex = _read(d.test, label_map, d, log) if d.test else []
    part1_ex = [ex for p in d.teacher_labelled for ex in _read(p, label_map, d, log)]
    pair = train_ex[0].text_b is not None

    tokenizer = get_tokenizer(s.features.tokenizer)
    tok = {name: [_tokens(tokenizer, ex, s.pretokenized) for ex in exs]
           for name, exs in (("train", train_ex), ("part1", part1_ex), ("dev", dev_ex), ("test", test_ex))}
    vocab = Vocab.build((t for ta, tb in tok["train"] + tok["part1"] for t in (ta, tb or [])),
                        min_freq=s.features.vocab_min_freq, max_size=s.features.vocab_max_size)
    featurizer = Featurizer(s.features, vocab)
    rows = {name: _rows(featurizer, exs, tok[name], label_map, gold=name != "part1")
            for name, exs in (("train", train_ex), ("part1", part1_ex), ("dev", dev_ex), ("test", test_ex))}
    log(f"data: part.0 {len(train_ex)} rows, part.1 {len(part1_ex)} rows, dev {len(dev_ex)}, test {len(test_ex)}; "
        f"{len(label_map)} labels; vocabulary {len(vocab)} ({s.features.tokenizer}); {time.perf_counter() - t0:.1f}s")

    dims = Dims(vocab_size=len(vocab), num_labels=len(label_map),
                ngram_buckets=s.features.ngram_buckets if s.features.ngrams else 0, pair=pair)
    import torch

    torch.manual_seed(cfg.train.seed)  # weight initialisation is part of the seeded run
    model = build_student(s.arch, s.model, dims)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"student {s.arch}: {n_params:,} parameters")
    ckpt = Path(cfg.output) / CHECKPOINT if cfg.train.checkpoint else None
    result = fit(model, featurizer.collate, rows["train"] + rows["part1"], rows["dev"], len(label_map), cfg.train,
                 progress=progress, log=log, checkpoint=ckpt)
    model.cpu().eval()
    metrics = {"arch": s.arch, "parameters": n_params, "train_seconds": result.seconds, "steps": result.steps,
               "best_step": result.best_step, "history": result.history,
               "dev": evaluate_rows(model, featurizer, rows["dev"], label_map),
               "config": to_dict(cfg)}
    if rows["test"]:
        metrics["test"] = evaluate_rows(model, featurizer, rows["test"], label_map)
    save_model(cfg.output, model, featurizer, label_map, params=to_dict(model.cfg), metrics=metrics, command=command)
    if ckpt:
        remove_checkpoint(ckpt)
    log(f"dev:  {format_metrics(metrics['dev']).splitlines()[0]}")
    if "test" in metrics:
        log(f"test: {format_metrics(metrics['test']).splitlines()[0]}")
    log(f"saved {cfg.output} ({time.perf_counter() - t0:.1f}s in all)")
    return metrics


def evaluate_folder(folder: str | Path, data: str | Path, label_column: str = "label") -> dict:
    """Metrics of the model in `folder` on the labelled file `data`."""
    from .predict import Predictor

    pred = Predictor(folder)
    exs = list(ExampleReader(data, label_column=label_column, label_map=pred.label_map))
    texts_b = [ex.text_b or "" for ex in exs] if pred.pair else None
    ids = pred.logits([ex.text_a for ex in exs], texts_b).argmax(-1)
    gold = np.array([pred.label_map.id(ex.label) for ex in exs])
    return classification_metrics(gold, ids, pred.labels)


def dump_json(obj, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
