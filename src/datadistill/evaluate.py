"""Classification metrics: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

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
    return {
        "n": int(len(gold)),
        "accuracy": float(tp.sum() / max(1, len(gold))),
        "macro_f1": float(f1.mean()),
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
        f"{'label':>10} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>6}",
    ]
    for lab, c in m["per_class"].items():
        lines.append(
            f"{lab:>10} {c['precision'] * 100:6.2f} {c['recall'] * 100:6.2f} {c['f1'] * 100:6.2f} {c['support']:6d}"
        )
    lines.append("confusion (rows gold, columns predicted): " + str(m["confusion"]))
    return "\n".join(lines)
