"""The one training loop: the teacher's fine-tuning and every student run through `fit`.

It sees a network, a function that turns a batch of row indices into a loss, and a dev evaluation;
never the model's type. AdamW (no decay where the caller says), warm-up then linear decay (or
constant), gradient clipping, dev evaluation every `eval_every` steps (default once per epoch),
patience and the best weights kept (or the last, or their mean over the schedule's second half),
progress, and a checkpoint at each evaluation from which a killed run resumes exactly (see checkpoint.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch
from torch import nn

from .batching import length_batches
from .checkpoint import TrainingCheckpoint
from .config import ConfigError, check_ranges
from .distributed import World, world as current_world
from .log import Progress, logger as _root

log = _root.getChild("train")


class LoopConfig(Protocol):
    """The settings `fit` reads; `TrainConfig` (students) and `TeacherTrainConfig` both have them."""

    epochs: int
    batch_size: int
    lr: float
    warmup: float
    clip: float
    patience: int
    eval_every: int
    seed: int
    max_steps: int


# The ranges of the settings every training loop has (students' TrainConfig, the teacher's config)
LOOP_RANGES = {
    "seed": (0, 2**32 - 1),
    "epochs": (1, None),
    "batch_size": (1, None),
    "lr": (0, None, "open"),
    "weight_decay": (0, None),
    "warmup": (0, 1),
    "clip": (0, None),
    "patience": (1, None),
    "eval_every": (0, None),
    "max_steps": (0, None),
}


SOLVERS = ("auto", "adamw", "lbfgs")
# TrainConfig settings added after runs were recorded, with the value that reproduces those runs: left out
# of a pipeline step's fingerprint and a training checkpoint's run id while they hold it, so a finished
# run stays up to date, and a killed one resumes, after an upgrade
ADDED_LATER = {
    "logit_adjust": False,
    "solver": "adamw",
    "l2_c": 16.0,
    "solver_iterations": 300,
    "nb_scale": False,
    "keep": "best",
}


def added_later_default(key: str, value) -> bool:
    """Whether `key` is a setting added after runs were recorded and holds the value those runs had."""
    return key in ADDED_LATER and value == ADDED_LATER[key]


# which weights a mini-batch run returns: "best", those that scored best on dev (and stop after `patience`
# evaluations without improvement); "last", those at the end of the schedule; "average", the mean of the
# weights at each evaluation past half of the steps (where a linear decay has about halved the learning rate)
KEEPS = ("best", "last", "average")


@dataclass
class TrainConfig:
    """A student's training settings (the teacher's are `TeacherTrainConfig`)."""

    epochs: int = 8
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 0.01
    warmup: float = 0.05  # share of all steps spent warming up the learning rate
    schedule: str = "linear"  # linear (decay to 0) or constant after warm-up
    clip: float = 1.0  # max gradient norm; 0 = off
    patience: int = 3  # evaluations without dev improvement before stopping (keep "best" only)
    eval_every: int = 0  # steps between dev evaluations; 0 = once per epoch
    keep: str = "best"  # best, last or average: which weights the run returns (KEEPS above)
    seed: int = 1
    device: str = "auto"  # auto, cpu, cuda, cuda:1 ...
    loss: str = "hard"  # hard, kl, mse, mix (see losses.py)
    alpha: float = 0.5  # mix: weight of the hard-label loss
    temperature: float = 1.0  # kl/mix: softmax temperature
    part0_share: float = 0.2  # part.0 (gold) rows are repeated to be at least this share of an epoch
    eval_batch_size: int = 256
    max_steps: int = 0  # stop after this many steps (0 = no limit); for smoke tests
    checkpoint: bool = True  # save the training state at each evaluation so a killed run resumes
    min_confidence: float = 0.0  # part.1: keep only rows whose teacher top probability is at least this
    balance_part1: bool = False  # part.1: keep as many rows of each class as the rarest class has
    # train against the class prior of an epoch's rows (its log added to the logits), answer without it
    # (logit adjustment, Menon et al. 2021): a part.1 the teacher labels mostly one class, while the test
    # is balanced, does not tilt every answer towards that class
    logit_adjust: bool = False
    # how the weights are found: "adamw", the mini-batch loop above; "lbfgs", full-batch L-BFGS, for a
    # student linear in its weights (a linear bag: solve.py); "auto", lbfgs where the student allows it
    solver: str = "auto"
    # lbfgs: inverse L2 strength, as scikit-learn's C (penalty ||W||^2 / (2 C n)); "auto": each C of
    # solve.L2_C_GRID solved in turn and the best on dev kept
    l2_c: float | str = "auto"
    solver_iterations: int = 300  # lbfgs: at most this many iterations (epochs, lr and batches are the loop's)
    # lbfgs: scale each input by its naive-Bayes log-count ratio under the training labels (NBSVM): an
    # n-gram the labels tie to one class is penalised less than one every class uses (solve.nb_scale);
    # None: on for single texts, off for pairs (whose shared n-grams belong to no class); off by default:
    # on gold labels it gains, distilled on case 1 it did not (bench/RESULTS.md)
    nb_scale: bool | None = False

    RANGES = {
        **LOOP_RANGES,
        "l2_c": (1e-6, 1e6),  # beyond these the penalty over- or underflows float32
        "solver_iterations": (1, None),
        "eval_batch_size": (1, None),
        "alpha": (0, 1),
        "temperature": (0, None, "open"),
        "part0_share": (0, 1, "right-open"),
        "min_confidence": (0, 1),
    }

    def validate(self) -> None:
        from .losses import LOSSES
        from .registry import unknown_name_message

        if self.loss not in LOSSES:
            raise ConfigError(unknown_name_message("loss", self.loss, LOSSES.names()))
        if self.schedule not in ("linear", "constant"):
            raise ConfigError(f"schedule must be 'linear' or 'constant', got '{self.schedule}'")
        if isinstance(self.l2_c, str) and self.l2_c != "auto":
            raise ConfigError(f"l2_c must be a number or 'auto', got '{self.l2_c}'")
        if self.solver not in SOLVERS:
            raise ConfigError(f"solver must be one of {', '.join(SOLVERS)}, got '{self.solver}'")
        if self.keep not in KEEPS:
            raise ConfigError(f"keep must be one of {', '.join(KEEPS)}, got '{self.keep}'")
        if self.nb_scale and self.solver == "adamw":
            raise ConfigError(
                "nb_scale scales a solved linear bag's inputs, and solver is adamw: set solver to auto, or remove nb_scale"
            )
        check_ranges(self)
        check_device(self.device)


def check_device(name: str) -> None:
    """auto, cpu, cuda or cuda:N (cuda only where torch sees that GPU)."""
    import re

    if name in ("auto", "cpu") or re.fullmatch(r"cuda(:\d+)?", name) or name == "mps":
        if name.startswith("cuda"):
            import torch

            n = torch.cuda.device_count()
            i = int(name.split(":")[1]) if ":" in name else 0
            if i >= n:
                raise ConfigError(f"device '{name}' is not available here ({n} CUDA devices); use auto or cpu")
        return
    raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got '{name}'")


@dataclass
class FitResult:
    best_dev_accuracy: float  # that of the weights returned (cfg.keep: best, last or average)
    best_step: int
    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    averaged: int = 0  # keep "average": how many evaluations' weights the mean holds
    chosen: dict = field(default_factory=dict)  # settings the fit chose itself (a solved bag's l2_c)


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when there is one, else cpu; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, by_length: bool) -> list[np.ndarray]:
    if by_length:
        return length_batches(lengths, batch_size, rng)
    perm = rng.permutation(len(lengths))
    return [perm[s : s + batch_size] for s in range(0, len(perm), batch_size)]


def epoch_steps(rows: int, batch_size: int, world_size: int = 1) -> int:
    """The optimizer steps in one epoch of `rows`: one per batch, the last batch (the only one `_batches`
    cuts short) included unless it has fewer rows than there are ranks, which torchrun's ranks drop (each
    needs a row). The schedule's length: it ends at zero and the last step is evaluated."""
    full, rest = divmod(rows, batch_size)
    return full * (batch_size >= world_size) + (rest >= world_size if rest else 0)


def fit(
    model: nn.Module,
    batch_loss: Callable[[np.ndarray, nn.Module], tuple[torch.Tensor, float | None]],
    evaluate: Callable[[], float],
    lengths: np.ndarray,
    cfg: LoopConfig,
    *,
    param_groups: list[dict] | None = None,
    index: np.ndarray | None = None,
    checkpoint: str | Path | None = None,
    run_id: str = "",
    what: str = "training",
    progress: bool = True,
    world: World | None = None,
    unused_parameters: bool = False,
) -> FitResult:
    """Train `model` in place; at the end it holds the weights that scored best on dev (cfg.keep "best",
    the default), the last weights ("last") or the mean of those of the second half ("average").

    batch_loss(ids, net) -> (loss, accuracy or None) for the rows `ids`, calling `net` for the forward
    pass (the model itself, or its DistributedDataParallel wrapper); evaluate() -> dev accuracy.
    Under torchrun (`world` of N ranks) every rank draws the same global batches and takes its 1/N
    of each; DDP averages the gradients, so N processes take the steps one process takes with the
    same global batch. Rank 0 evaluates (its dev accuracy decides for all), logs and checkpoints.
    `unused_parameters`: the model has parameters a forward pass may not use (DDP must look for them).
    `index` lists the row ids of one epoch (default every row once; a student repeats gold rows) and
    `lengths[i]` is the length of `index[i]`, for batches of similar length. `param_groups` are
    AdamW's groups (default: every parameter with cfg.weight_decay). With `checkpoint` the state is
    saved there at each evaluation and a later call with the same `run_id` resumes from it, ending
    with the same weights as a run never stopped; the caller removes the file once the model is saved.
    """
    world = world or current_world()  # a world of one outside torchrun
    if cfg.batch_size < world.size:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is smaller than the {world.size} torchrun processes: each takes a "
            f"share of every batch; set batch_size to at least {world.size}"
        )
    index = np.arange(len(lengths)) if index is None else index
    lengths = np.asarray(lengths)
    steps_per_epoch = epoch_steps(len(index), cfg.batch_size, world.size)
    if not steps_per_epoch:  # nothing to train on, and no model worth saving
        raise ConfigError(
            f"{len(index)} training rows are fewer than the {world.size} torchrun processes: each needs a row "
            "of every batch; run fewer processes"
            if world.distributed
            else "no training rows"
        )
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = next(model.parameters()).device
    net = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        # unused_parameters: e.g. a transformers pooler the mean-pooling head never reads
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused_parameters)
    groups = param_groups or [{"params": list(model.parameters()), "weight_decay": getattr(cfg, "weight_decay", 0.0)}]
    # fused: one kernel over all tensors; with the students' hashed n-gram tables the default update
    # was most of a CPU training step
    opt = torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type in ("cpu", "cuda"))
    total = steps_per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_schedule(total, cfg.warmup, getattr(cfg, "schedule", "linear"))
    )
    # the batches each rank takes depend on the number of ranks: a checkpoint resumes only with as many
    # (one process keeps the run ids of checkpoints written before this mattered)
    ranks = f"|ranks {world.size}" if world.distributed else ""
    ckpt = TrainingCheckpoint(checkpoint, run_id + ranks, what) if checkpoint else None
    # st: where training is; a checkpoint restores it with the weights, optimizer, schedule and RNGs
    st = {
        "step": 0,
        "epoch": 0,
        "done_in_epoch": 0,
        "best_acc": -1.0,
        "best_step": 0,
        "bad": 0,
        "history": [],
        "seconds": 0.0,
        "run_loss": 0.0,
        "run_acc": 0.0,
    }
    best_state = None
    if ckpt and (resumed := ckpt.load(model, opt, sched, rng, device)):
        st, best_state = resumed
        log.info(f"resuming {what} at step {st['step']} of {total} from {ckpt.path}")
    keep = getattr(cfg, "keep", "best")  # the teacher's config has no keep: its best on dev
    # only "best" may return the starting weights; "last" needs no second copy in memory or in each
    # checkpoint, and "average" makes its own at its first averaged evaluation
    best_state = best_state or (_cpu_copy(model) if keep == "best" else None)
    step, t0 = st["step"], time.perf_counter() - st["seconds"]
    eval_every = cfg.eval_every or steps_per_epoch
    by_length = getattr(cfg, "group_by_length", True)
    bar = Progress(total, what, "step", progress and world.main, initial=step)
    stop = step >= total
    model.train()
    for epoch in range(st["epoch"], cfg.epochs):
        if stop:
            break
        epoch_rng = json.dumps(rng.bit_generator.state)  # the epoch's batches are re-drawn from this on resume
        batches = _batches(lengths, cfg.batch_size, rng, by_length)
        if world.distributed:  # each rank needs rows of every batch (DDP steps together)
            batches = [np.array_split(b, world.size)[world.rank] for b in batches if len(b) >= world.size]
        skip = st["done_in_epoch"] if epoch == st["epoch"] else 0
        run_loss, run_acc = (st["run_loss"], st["run_acc"]) if skip else (0.0, 0.0)
        for bi in range(skip, len(batches)):
            loss, acc = batch_loss(index[batches[bi]], net)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            sched.step()
            step += 1
            run_loss = 0.9 * run_loss + 0.1 * loss.item() if bi else loss.item()
            if acc is not None:
                run_acc = 0.9 * run_acc + 0.1 * acc if bi else acc
            bar.update(1, loss=f"{run_loss:.4f}", **({"acc": f"{run_acc:.3f}"} if acc is not None else {}))
            if step % eval_every == 0 or step == total:
                dev_acc = world.broadcast(evaluate() if world.main else None)
                model.train()
                st["history"].append(
                    {"step": step, "epoch": epoch + 1, "train_loss": run_loss, "dev_accuracy": dev_acc}
                )
                improved = dev_acc > st["best_acc"]
                (log.info if world.main else log.debug)(
                    f"step {step} epoch {epoch + 1}: loss {run_loss:.4f} dev accuracy {dev_acc * 100:.2f}"
                    + (" (best)" if improved and keep == "best" else "")
                )
                if keep != "best":  # no early stop: the schedule runs to its end
                    st["best_acc"], st["best_step"] = dev_acc, step
                    if keep == "average" and 2 * step > total:
                        st["averaged"] = st.get("averaged", 0) + 1
                        best_state = _running_mean(best_state, model, st["averaged"])
                elif improved:
                    st["best_acc"], st["best_step"], st["bad"] = dev_acc, step, 0
                    best_state = _cpu_copy(model)
                else:
                    st["bad"] += 1
                    stop = st["bad"] >= cfg.patience
                if ckpt and world.main and not stop and step < total:
                    st.update(
                        step=step,
                        epoch=epoch,
                        done_in_epoch=bi + 1,
                        run_loss=run_loss,
                        run_acc=run_acc,
                        seconds=time.perf_counter() - t0,
                    )
                    ckpt.save(model, opt, sched, epoch_rng, st, best_state, device)
            if stop or step >= total:
                stop = True
                break
    bar.close()
    averaged = st.get("averaged", 0) if keep == "average" else 0
    if keep == "best" or averaged:
        model.load_state_dict(best_state)
    if averaged > 1:  # the mean of several weights: its own dev accuracy
        st["best_acc"] = world.broadcast(evaluate() if world.main else None)
        log.info(f"weights averaged over {averaged} evaluations: dev accuracy {st['best_acc'] * 100:.2f}")
    return FitResult(
        best_dev_accuracy=st["best_acc"],
        best_step=st["best_step"],
        steps=step,
        seconds=time.perf_counter() - t0,
        history=st["history"],
        averaged=averaged,
    )


def _cpu_copy(model: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _running_mean(mean: dict | None, model: nn.Module, n: int) -> dict:
    """The mean of n weights from the mean of the first n - 1 and the model's (the n-th); integer
    buffers (counters) take the latest value."""
    if n == 1:
        return _cpu_copy(model)
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if mean[k].is_floating_point():
            mean[k].add_(v - mean[k], alpha=1.0 / n)
        else:
            mean[k].copy_(v)
    return mean
