"""Full-batch solving of a linear student (train.solver "lbfgs").

A linear bag's logits are X W + b for a fixed sparse X (its weighted token and n-gram inputs), so its
training is a convex problem, as a classical logistic regression's: L-BFGS over all rows at once, with
an L2 penalty ||W||^2 / (2 C n) (scikit-learn's C; the bias is not penalised), reaches the optimum
that mini-batch Adam only approaches (Adam moves rare n-grams as far as common ones and stops far from
it). The objective is the training loop's own: the student's loss over the rows of one epoch (gold
rows repeated as part0_share asks). With train.nb_scale each input is first scaled by its naive-Bayes
log-count ratio (NBSVM, Wang and Manning 2012): W = s * V with the penalty on V, so an n-gram the labels
tie to one class is penalised less than one both classes use. bench/RESULTS.md ("The linear bag,
solved") has the measurements.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import torch

from .log import Progress, logger
from .train import FitResult

log = logger.getChild("solve")

SOLVE_CHUNK = 25  # L-BFGS iterations between dev evaluations
L2_C_GRID = (1.0, 4.0, 16.0, 64.0)  # train.l2_c "auto": solved for each, strongest penalty first
HISTORY = 20  # L-BFGS correction pairs kept, each two vectors the size of W
MIN_HISTORY = 5  # fewer, and L-BFGS converges too slowly to beat the mini-batch loop
HISTORY_BYTES = 2 * 1024**3  # the most the history may hold (float32)


def history_for(n_weights: int) -> int | None:
    """The L-BFGS history that fits HISTORY_BYTES for a W of `n_weights` numbers (at most HISTORY), or
    None when not even MIN_HISTORY fits (a very wide bag with many classes: the loop trains it)."""
    fits = HISTORY_BYTES // (2 * 4 * max(n_weights, 1))
    return min(HISTORY, fits) if fits >= MIN_HISTORY else None


def design_matrix(model, batches: Iterable[dict[str, torch.Tensor]], n_rows: int) -> torch.Tensor:
    """The model's inputs X [n_rows, D] (sparse CSR) from its `linear_design`, batch after batch."""
    rows, cols, vals = [], [], []
    start = 0
    for batch in batches:
        r, c, v = model.linear_design(batch)
        rows.append(r + start)
        cols.append(c)
        vals.append(v.float())
        start += len(batch["ids_a"])
    width = sum(n for _, n in model.linear_tables())
    index = torch.stack([torch.cat(rows), torch.cat(cols)])
    x = torch.sparse_coo_tensor(index, torch.cat(vals), (n_rows, width), check_invariants=False).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": sparse.mm on CSR is what L-BFGS runs on
        warnings.simplefilter("ignore", UserWarning)
        return x.to_sparse_csr()  # repeated (row, column) entries added up by coalesce


def solve_linear(
    model,
    x: torch.Tensor,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    evaluate: Callable[[], float],
    n: int,
    c: float,
    iterations: int,
    progress: bool = True,
    history: int = HISTORY,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    desc: str = "student solving",
    product: _Product | None = None,
    scale: torch.Tensor | None = None,
) -> FitResult:
    """Fit W [D, C] and b [C] of `model` (loaded with `set_linear`) to minimise loss_of(X W + b) +
    ||W||^2 / (2 c n); x [N, D] sparse, starting from zero or `init` (W, b). Every SOLVE_CHUNK
    iterations the dev accuracy (`evaluate`) is logged; the model ends with the weights that scored
    best on dev (the later on a tie). `product`: X's `_Product`, when the caller solves X more than once.
    `scale` [D] (`nb_scale`): W = scale * V row by row, with the penalty on V instead of W."""
    t0 = time.perf_counter()
    num_labels = model.head.bias.shape[0]
    weight = torch.zeros(x.shape[1], num_labels)  # V when scaled, else W
    bias = torch.zeros(num_labels)
    s = scale[:, None] if scale is not None else None  # [D, 1]
    if init is not None:
        weight, bias = init[0].detach().clone(), init[1].detach().clone()
        if s is not None:  # init holds W: V = W / s (an input scaled to 0 has no weight)
            weight = torch.where(s > 0, weight / s.clamp(min=1e-30), torch.zeros_like(weight))
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=SOLVE_CHUNK,
        history_size=history,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )
    penalty = 1.0 / (2.0 * c * n)
    last = [0.0]

    product = product or _Product(x)
    bar = Progress(iterations, desc, "iteration", progress)
    shown = [0]  # iterations the bar has counted

    def effective() -> torch.Tensor:  # W [D, C]
        return weight * s if s is not None else weight

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_of(product(effective()) + bias) + penalty * (weight * weight).sum()
        loss.backward()
        last[0] = loss.item()
        # the bar moves with each iteration inside a chunk (a chunk of a large design takes minutes)
        n_iter = opt.state[weight].get("n_iter", 0)
        if n_iter > shown[0]:
            bar.update(n_iter - shown[0], loss=f"{last[0]:.4f}")
            shown[0] = n_iter
        return loss

    history: list[dict] = []
    best = (-1.0, 0, None)
    done = 0
    while done < iterations:
        group = opt.param_groups[0]
        chunk = group["max_iter"] = min(SOLVE_CHUNK, iterations - done)
        group["max_eval"] = 10 * chunk  # line searches take several evaluations; iterations are the limit
        state = opt.state[weight]
        before, evals = state.get("n_iter", 0), state.get("func_evals", 0)
        opt.step(closure)
        took = state["n_iter"] - before
        done += took
        # fewer iterations than the chunk without running out of evaluations: L-BFGS met its tolerance
        converged = took < chunk and state["func_evals"] - evals < group["max_eval"]
        w = effective().detach()
        model.set_linear(w, bias.detach())
        dev_acc = evaluate()
        improved = dev_acc >= best[0]
        history.append({"step": done, "train_loss": last[0], "dev_accuracy": dev_acc})
        log.info(
            f"iteration {done}: loss {last[0]:.4f} dev accuracy {dev_acc * 100:.2f}" + (" (best)" if improved else "")
        )
        if improved:
            best = (dev_acc, done, (w.clone(), bias.detach().clone()))
        bar.update(max(0, state["n_iter"] - shown[0]), loss=f"{last[0]:.4f}")
        shown[0] = max(shown[0], state["n_iter"])
        if converged:
            log.info(f"converged after {done} iterations")
            break
    bar.close()
    model.set_linear(*best[2])
    return FitResult(
        best_dev_accuracy=best[0],
        best_step=best[1],
        steps=done,
        seconds=time.perf_counter() - t0,
        history=history,
    )


def solve_path(
    model,
    x: torch.Tensor,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    evaluate: Callable[[], float],
    n: int,
    cs: Iterable[float],
    iterations: int,
    progress: bool = True,
    history: int = HISTORY,
    scale: torch.Tensor | None = None,
) -> FitResult:
    """`solve_linear` for each C of `cs` in increasing order, each started from the previous one's
    weights (a regularisation path: a weaker penalty moves the optimum a little), keeping the C whose
    weights scored best on dev (on a tie, the C nearest 16: the fixed default measured before). Its
    result names the C (`chosen`); the history holds every C's iterations, each marked with its l2_c."""
    t0 = time.perf_counter()

    def rank(r: FitResult, c: float) -> tuple[float, float]:
        return r.best_dev_accuracy, -abs(math.log(c / 16))

    best: tuple[FitResult, float, tuple] | None = None
    init, steps, history_all = None, 0, []
    product, cs = _Product(x), sorted(cs)  # X^T built once for every C
    for i, c in enumerate(cs):
        desc = f"student solving, C {c:g} ({i + 1} of {len(cs)})"
        result = solve_linear(
            model, x, loss_of, evaluate, n, c, iterations, progress, history, init, desc, product, scale
        )
        init = model.linear_weights()  # the best weights of this C: the next C starts there
        steps += result.steps
        history_all += [{**h, "l2_c": c} for h in result.history]
        log.info(f"l2_c {c:g}: best dev accuracy {result.best_dev_accuracy * 100:.2f} at iteration {result.best_step}")
        if best is None or rank(result, c) > rank(best[0], best[1]):  # ties are common on a small dev set
            best = (result, c, init)
    result, c, weights = best
    model.set_linear(*weights)
    log.info(f"l2_c auto: chose {c:g} (dev accuracy {result.best_dev_accuracy * 100:.2f})")
    return FitResult(
        best_dev_accuracy=result.best_dev_accuracy,
        best_step=result.best_step,
        steps=steps,
        seconds=time.perf_counter() - t0,
        history=history_all,
        chosen={"l2_c": c},
    )


def nb_scale(x: torch.Tensor, label_mass: torch.Tensor, scaled: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    """Each input's naive-Bayes log-count ratio |r| (NBSVM, Wang and Manning 2012), the most over the
    classes, one against the rest: r = log((p / |p|_1) / (q / |q|_1)) with p (q) `smoothing` plus the
    label mass of the rows holding the input in (outside) the class. x [N, D] sparse CSR (an input counts
    once per row, whatever its value); label_mass [N, C]: each row's labels summed over an epoch (gold
    one-hot, teacher probabilities); scaled [D] bool: the inputs to scale (the others keep 1) -> [D]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sparse CSR is "beta"
        held = torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), torch.ones_like(x.values()), x.shape)
        inside = torch.sparse.mm(held.t(), label_mass.float()).double()  # [D, C]
    outside = inside.sum(1, keepdim=True) - inside  # [D, C]: the mass of the other classes
    seen = (inside.sum(1) > 0)[:, None]  # [D, 1]: the |.|_1 norms run over the inputs training holds
    p, q = (inside + smoothing) * seen, (outside + smoothing) * seen
    r = torch.log((p / p.sum(0)).clamp(min=1e-300)) - torch.log((q / q.sum(0)).clamp(min=1e-300))  # [D, C]
    r = torch.nan_to_num(r, nan=0.0)  # no row holds any input, or no label mass: 0 / 0 scales to nothing
    return torch.where(scaled, r.abs().amax(1) * seen[:, 0], torch.ones(len(r), dtype=r.dtype)).float()


class _Product:
    """weight [D, C] -> X weight [N, C], differentiable in weight, with X^T kept in CSR for the backward
    pass (torch's own sparse.mm backward transposes X at every call: ~7x slower, measured)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # sparse CSR is "beta"
            self.xt = x.to_sparse_coo().t().coalesce().to_sparse_csr()

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return _SparseMm.apply(weight, self.x, self.xt)


class _SparseMm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: torch.Tensor, x: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        ctx.xt = xt
        return torch.sparse.mm(x, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return torch.sparse.mm(ctx.xt, grad), None, None


def label_mass(t: dict[str, torch.Tensor | None], rows: torch.Tensor, n: int, num_labels: int) -> torch.Tensor:
    """Each of n rows' labels summed over an epoch [n, C]: teacher probabilities where the teacher scored
    the row (its logits' softmax where it kept no probabilities), else the gold label one-hot; `t` as
    `targets` gives it for the epoch's rows, `rows` [E] their row numbers."""
    mass = torch.nn.functional.one_hot(t["labels"], num_labels).float()  # [E, C]
    if t.get("probs_T") is not None:
        probs = t["probs_T"]
        probs = torch.where(probs.sum(1, keepdim=True) > 0, probs, t["logits_T"].softmax(-1))
        mass = torch.where(t["has_T"][:, None], probs, mass)
    return torch.zeros(n, num_labels).index_add_(0, rows, mass)


def targets(rows, num_labels: int) -> dict[str, torch.Tensor | None]:
    """A row table's labels and teacher scores as the loss functions take them [N] / [N, C]; as in
    `collate_rows`, a row is teacher-scored when it has probabilities or logits (or both)."""
    probs, logits = np.asarray(rows.probs), np.asarray(rows.logits)
    has_t = (~np.isnan(probs[:, 0]) | ~np.isnan(logits[:, 0])) if len(probs) else np.zeros(0, dtype=bool)
    out = {"labels": torch.from_numpy(np.asarray(rows.label, dtype=np.int64)), "has_T": torch.from_numpy(has_t)}
    if has_t.any():
        out["probs_T"] = torch.from_numpy(np.nan_to_num(probs, nan=0.0).astype(np.float32))
        out["logits_T"] = torch.from_numpy(np.nan_to_num(logits, nan=0.0).astype(np.float32))
        out["has_logits"] = torch.from_numpy(~np.isnan(logits[:, 0]))
    return out
