"""The one training loop for every student: it sees a network (batch -> logits) and never its type.

AdamW, warm-up then linear decay, gradient clipping, early stopping on dev accuracy with the best
weights kept, seeded, a progress bar with loss and accuracy.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .batching import length_batches
from .checkpoint import TrainingCheckpoint, run_id
from .config import ConfigError
from .losses import LOSSES
from .registry import unknown_name_message


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.05          # share of all steps spent warming up the learning rate
    schedule: str = "linear"      # linear (decay to 0) or constant after warm-up
    clip: float = 1.0             # max gradient norm; 0 = off
    patience: int = 3             # evaluations without dev improvement before stopping
    eval_every: int = 0           # steps between dev evaluations; 0 = once per epoch
    seed: int = 1
    device: str = "auto"          # auto, cpu, cuda, cuda:1 ...
    loss: str = "hard"            # hard, kl, mse, mix (see losses.py)
    alpha: float = 0.5            # mix: weight of the hard-label loss
    temperature: float = 1.0      # kl/mix: softmax temperature
    part0_share: float = 0.2      # part.0 (gold) rows are repeated to be at least this share of an epoch
    eval_batch_size: int = 256
    max_steps: int = 0            # stop after this many steps (0 = no limit); for smoke tests
    checkpoint: bool = True       # save the training state at each evaluation so a killed run resumes

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(unknown_name_message("loss", self.loss, LOSSES.names()))
        if self.schedule not in ("linear", "constant"):
            raise ConfigError(f"schedule must be 'linear' or 'constant', got '{self.schedule}'")
        for name in ("alpha", "warmup"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if not 0.0 <= self.part0_share < 1.0:
            raise ConfigError(f"part0_share must be in [0, 1), got {self.part0_share}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.temperature <= 0:
            raise ConfigError("lr and temperature must be positive")


@dataclass
class Row:
    """One encoded training row: features per side, the label id, teacher scores if any."""

    a: np.ndarray          # token ids [L]
    b: np.ndarray | None
    label: int
    probs_T: list[float] | None = None
    logits_T: list[float] | None = None
    gold: bool = True  # part.0 (original labelled data) rather than teacher-labelled part.1

    @property
    def has_T(self) -> bool:
        return self.probs_T is not None or self.logits_T is not None


@dataclass
class FitResult:
    best_dev_accuracy: float
    best_step: int
    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def collate_rows(collate: Callable, rows: list[Row], num_labels: int, device: torch.device) -> dict:
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
def predict_logits(model: nn.Module, collate: Callable, rows: list[Row], num_labels: int,
                   batch_size: int = 256, device: torch.device | None = None) -> np.ndarray:
    """Logits [N, C] in input order (batched by length)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = np.zeros((len(rows), num_labels), dtype=np.float32)
    lengths = np.array([len(r.a) for r in rows])
    for idx in length_batches(lengths, batch_size, None):
        batch = collate_rows(collate, [rows[i] for i in idx], num_labels, device)
        out[idx] = model(batch).float().cpu().numpy()
    model.train(was_training)
    return out


def warmup_schedule(total: int, warmup: float, schedule: str = "linear") -> Callable[[int], float]:
    """LR multiplier per step: linear warm-up over `warmup` of the steps, then linear decay to 0 (or constant)."""
    warm = max(1, int(warmup * total))

    def at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if schedule == "constant":
            return 1.0
        return max(0.0, (total - step) / max(1, total - warm))

    return at


def optimizer_step(loss: torch.Tensor, model: nn.Module, opt: torch.optim.Optimizer, sched, clip: float) -> None:
    """Backward, clip the gradient norm (0 = off), step the optimizer and the LR schedule."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    sched.step()


def epoch_indices(rows: list[Row], part0_share: float) -> np.ndarray:
    """All teacher-labelled rows once, and gold rows repeated so they are >= part0_share of the epoch."""
    gold = np.array([i for i, r in enumerate(rows) if r.gold], dtype=np.int64)
    teach = np.array([i for i, r in enumerate(rows) if not r.gold], dtype=np.int64)
    reps = 1
    if len(gold) and len(teach) and part0_share > 0:
        reps = max(1, math.ceil(part0_share * len(teach) / ((1 - part0_share) * len(gold))))
    return np.concatenate([teach] + [gold] * reps)


def fit(model: nn.Module, collate: Callable, train_rows: list[Row], dev_rows: list[Row], num_labels: int,
        cfg: TrainConfig, progress: bool = True, log=print, checkpoint: str | Path | None = None) -> FitResult:
    """Train `model` in place; at the end it holds the weights that scored best on dev.

    With `checkpoint` (a file path) the whole training state is saved there at each dev evaluation,
    and a later call with the same model, settings and rows continues from it, ending with the same
    weights as a run never stopped. The caller removes the file once the model is saved.
    """
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    ckpt = None
    if checkpoint:  # identity: settings, the initial weights (architecture, sizes, seed) and every row
        ckpt = TrainingCheckpoint(checkpoint, _run_id(model, cfg, train_rows, dev_rows), log, "student training")
    model.to(device).train()
    loss_fn = LOSSES.get(cfg.loss)
    # no weight decay on embedding tables and biases
    tables = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))}
    decay = [p for p in model.parameters() if p.ndim > 1 and id(p) not in tables]
    rest = [p for p in model.parameters() if p.ndim <= 1 or id(p) in tables]
    # fused: one kernel over all tensors; the students' hashed n-gram tables (~6.4M of ~6.8M
    # parameters) made the default update ~80% of a CPU training step (BOW step 52 -> 20 ms, measured)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr,
                            fused=device.type in ("cpu", "cuda"))
    index = epoch_indices(train_rows, cfg.part0_share)
    lengths = np.array([len(train_rows[i].a) for i in index])
    steps_per_epoch = math.ceil(len(index) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_schedule(total, cfg.warmup, cfg.schedule))
    dev_gold = np.array([r.label for r in dev_rows])
    # st: where training is; a checkpoint restores it with the weights, optimizer, schedule and RNGs
    st = {"step": 0, "epoch": 0, "done_in_epoch": 0, "best_acc": -1.0, "best_step": 0, "bad": 0, "history": [],
          "seconds": 0.0, "run_loss": 0.0, "run_acc": 0.0}
    best_state = None
    if ckpt and (resumed := ckpt.load(model, opt, sched, rng, device)):
        st, best_state = resumed
        log(f"resuming training at step {st['step']} of {total} from {ckpt.path}")
    best_state = best_state or copy.deepcopy(model.state_dict())
    step, t0 = st["step"], time.perf_counter() - st["seconds"]
    eval_every = cfg.eval_every or steps_per_epoch
    stop = step >= total
    for epoch in range(st["epoch"], cfg.epochs):
        if stop:
            break
        epoch_rng = json.dumps(rng.bit_generator.state)  # the epoch's batches are re-drawn from this on resume
        batches = length_batches(lengths, cfg.batch_size, rng)
        skip = st["done_in_epoch"] if epoch == st["epoch"] else 0
        bar = tqdm(batches[skip:], desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", initial=skip,
                   total=len(batches), disable=not progress, file=sys.stderr, leave=False)
        run_loss, run_acc = (st["run_loss"], st["run_acc"]) if skip else (0.0, 0.0)
        for bi, b in enumerate(bar, start=skip):
            batch = collate_rows(collate, [train_rows[i] for i in index[b]], num_labels, device)
            logits_S = model(batch)                                           # [B, C]
            loss = loss_fn(logits_S, batch["labels"], probs_T=batch.get("probs_T"), logits_T=batch.get("logits_T"),
                           has_T=batch["has_T"], has_logits=batch.get("has_logits"), alpha=cfg.alpha,
                           temperature=cfg.temperature)
            optimizer_step(loss, model, opt, sched, cfg.clip)
            step += 1
            acc = (logits_S.argmax(-1) == batch["labels"]).float().mean().item()
            run_loss = 0.9 * run_loss + 0.1 * loss.item() if bi else loss.item()
            run_acc = 0.9 * run_acc + 0.1 * acc if bi else acc
            bar.set_postfix(loss=f"{run_loss:.4f}", acc=f"{run_acc:.3f}")
            if step % eval_every == 0 or step == total:
                dev_acc = float((predict_logits(model, collate, dev_rows, num_labels, cfg.eval_batch_size, device)
                                 .argmax(-1) == dev_gold).mean()) if dev_rows else 0.0
                st["history"].append({"step": step, "epoch": epoch + 1, "train_loss": run_loss,
                                      "dev_accuracy": dev_acc})
                improved = dev_acc > st["best_acc"]
                log(f"step {step} epoch {epoch + 1}: loss {run_loss:.4f} dev accuracy {dev_acc * 100:.2f}"
                    + (" (best)" if improved else ""))
                if improved:
                    st["best_acc"], st["best_step"], st["bad"] = dev_acc, step, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    st["bad"] += 1
                    stop = st["bad"] >= cfg.patience
                if ckpt and not stop and step < total:
                    st.update(step=step, epoch=epoch, done_in_epoch=bi + 1, run_loss=run_loss, run_acc=run_acc,
                              seconds=time.perf_counter() - t0)
                    ckpt.save(model, opt, sched, epoch_rng, st, best_state, device)
            if stop or step >= total:
                stop = True
                break
        bar.close()
    model.load_state_dict(best_state)
    return FitResult(best_dev_accuracy=st["best_acc"], best_step=st["best_step"], steps=step,
                     seconds=time.perf_counter() - t0, history=st["history"])


def _run_id(model: nn.Module, cfg: TrainConfig, train_rows: list[Row], dev_rows: list[Row]) -> str:
    """Settings, initial weights and rows (ids, labels, teacher scores): what a checkpoint must match."""
    parts: list = [type(model).__name__, {k: v for k, v in asdict(cfg).items() if k != "device"}]
    parts += [v.detach().cpu().numpy() for v in model.state_dict().values()]
    for rows in (train_rows, dev_rows):
        parts.append(np.concatenate([r.a for r in rows] + [r.b for r in rows if r.b is not None] or [np.zeros(0)]))
        parts.append(np.array([len(r.a) for r in rows] + [len(r.b) for r in rows if r.b is not None]))
        parts.append([(r.label, r.gold, r.probs_T, r.logits_T) for r in rows])
    return run_id(*parts)
