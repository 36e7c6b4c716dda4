"""Metrics: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix for every task;
for two-class tasks also the ranking view of the positive class (its F1, AUC and the pair-order
ratio 正逆序比 that search and matching tasks are judged by)."""

from __future__ import annotations

import math

import numpy as np


def classification_metrics(gold: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict:
    """gold, pred: label ids [N]. Returns a JSON-ready dict."""
    k = len(labels)
    conf = np.zeros((k, k), dtype=np.int64)  # rows: gold, columns: predicted
    np.add.at(conf, (gold, pred), 1)
    tp = np.diag(conf).astype(float)
    prec = np.divide(tp, conf.sum(0), out=np.zeros(k), where=conf.sum(0) > 0)
    rec = np.divide(tp, conf.sum(1), out=np.zeros(k), where=conf.sum(1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(k), where=(prec + rec) > 0)
    present = (conf.sum(0) + conf.sum(1)) > 0
    return {
        "n": int(len(gold)),
        "accuracy": float(tp.sum() / max(1, len(gold))),
        # over the labels in gold or predictions (scikit-learn's rule): a class absent from both is no error
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            lab: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(conf[i].sum()),
            }
            for i, lab in enumerate(labels)
        },
        "confusion": conf.tolist(),
        "labels": labels,
    }


def format_metrics(m: dict) -> str:
    """A short human-readable report."""
    lines = [
        f"accuracy {m['accuracy'] * 100:.2f}  macro-F1 {m['macro_f1'] * 100:.2f}  (n={m['n']})",
        *([format_ranking(m["ranking"])] if m.get("ranking") else []),
        f"{'label':>10} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>6}",
    ]
    for lab, c in m["per_class"].items():
        lines.append(
            f"{lab:>10} {c['precision'] * 100:6.2f} {c['recall'] * 100:6.2f} {c['f1'] * 100:6.2f} {c['support']:6d}"
        )
    lines.append("confusion (rows gold, columns predicted): " + str(m["confusion"]))
    return "\n".join(lines)


def pair_order(scores, positive, groups=None) -> dict:
    """The pair-order ratio (正逆序比) of a matching model, with AUC.

    scores: the model's score for the positive class per candidate [N]; positive: True where the
    candidate truly matches [N]; groups: the query each candidate belongs to [N] (the same text_a, or
    a qid column), or None to compare every positive with every negative of the set.
    Within each group holding at least one positive and one negative, every (positive, negative) pair
    is `correct` when the positive scores higher, `reversed` when lower, a `tie` when equal.
    ratio = correct / reversed; auc = (correct + ties / 2) / pairs. Without groups and ties,
    ratio = auc / (1 - auc).
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    keys = (
        np.zeros(len(scores), dtype=np.int64)
        if groups is None
        else np.unique(np.asarray(groups), return_inverse=True)[1]
    )
    correct = reversed_ = ties = 0
    used = 0
    for g in np.unique(keys):
        in_g = keys == g
        pos, neg = np.sort(scores[in_g & positive]), np.sort(scores[in_g & ~positive])
        if not len(pos) or not len(neg):
            continue
        used += 1
        below = np.searchsorted(neg, pos, side="left")  # negatives scored lower than each positive
        at_or_below = np.searchsorted(neg, pos, side="right")
        correct += int(below.sum())
        ties += int((at_or_below - below).sum())
        reversed_ += int((len(neg) - at_or_below).sum())
    pairs = correct + reversed_ + ties
    return {
        "correct": correct,
        "reversed": reversed_,
        "ties": ties,
        "pairs": pairs,
        "groups": used if groups is not None else None,
        "ratio": correct / reversed_ if reversed_ else float("inf") if correct else float("nan"),
        "auc": (correct + ties / 2) / pairs if pairs else float("nan"),
        "grouped": groups is not None,
    }


# Grouping by text_a is used when at least this share of the rows lies in groups holding both a
# positive and a negative candidate; otherwise (e.g. LCQMC, one candidate per query) all pairs.
GROUPED_SHARE = 0.5


def query_groups(examples, positive: np.ndarray) -> tuple[list[str] | None, str]:
    """The groups the pair-order ratio counts within, and how they were chosen, in words.

    A `qid` column names the groups; else candidates sharing a `text_a` form one when most rows
    fall in such mixed groups; else None (every positive against every negative of the set)."""
    if all(getattr(e, "qid", None) is not None for e in examples):
        return [e.qid for e in examples], "within qid groups"
    keys = [e.text_a for e in examples]
    _, inverse = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    n_pos = np.bincount(inverse, weights=positive.astype(float))
    n_all = np.bincount(inverse)
    mixed = (n_pos > 0) & (n_pos < n_all)
    if len(keys) and mixed[inverse].mean() >= GROUPED_SHARE:
        return keys, "within groups of the same text_a"
    if not positive.any() or positive.all():
        return None, "over all positive-negative pairs of the set (it has no positive-negative pair)"
    return None, "over all positive-negative pairs of the set (too few queries with several candidates)"


def positive_label(labels: list[str], positive: str | None = None) -> str | None:
    """The positive class of a two-class task: `positive` when given, else '1' when the labels are
    two and include it; None for other tasks (no ranking metrics)."""
    if positive is not None:
        if positive not in labels:
            raise ValueError(f"positive label '{positive}' is not a label of this task (labels: {', '.join(labels)})")
        return positive
    return "1" if len(labels) == 2 and "1" in labels else None


def task_metrics(
    gold: np.ndarray,
    probs: np.ndarray,
    labels: list[str],
    positive: str | None = None,
    examples=None,
) -> dict:
    """classification_metrics of argmax(probs [N, C]) and, when the task has a positive label, the
    `ranking` view: that class's F1, AUC and pair-order ratio of its probability (grouped as
    `query_groups` decides from `examples`)."""
    m = classification_metrics(gold, probs.argmax(-1), labels)
    pos = positive_label(labels, positive)
    if pos is not None:
        k = labels.index(pos)
        is_pos = gold == k
        groups, how = query_groups(examples, is_pos) if examples is not None else (None, "over all pairs")
        order = pair_order(probs[:, k], is_pos, groups)
        m["ranking"] = {
            "positive": pos,
            "f1_positive": m["per_class"][pos]["f1"],
            "auc": order["auc"],
            "pair_order": order["ratio"],
            "grouping": how,
            **{k2: order[k2] for k2 in ("correct", "reversed", "ties", "pairs", "groups")},
        }
    return m


def finite(obj):
    """`obj` with every infinite or NaN float replaced by None (JSON has no Infinity or NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def ratio_text(r: dict) -> str:
    """The pair-order ratio as shown: '∞' when nothing is reversed, '–' when there are no pairs."""
    v = r["pair_order"]
    if v is None or not math.isfinite(v):
        return "∞" if r["correct"] and not r["reversed"] else "–"
    return f"{v:.2f}"


def auc_text(r: dict) -> str:
    """The AUC as shown: '–' when the set lacks a positive or a negative."""
    v = r["auc"]
    return f"{v * 100:.2f}" if v is not None and math.isfinite(v) else "–"


def format_ranking(r: dict) -> str:
    return (
        f"positive '{r['positive']}': F1 {r['f1_positive'] * 100:.2f}  AUC {auc_text(r)}  "
        f"pair-order {ratio_text(r)} ({r['correct']:,} correct / {r['reversed']:,} reversed, "
        f"{r['ties']:,} ties, {r['grouping']})"
    )
