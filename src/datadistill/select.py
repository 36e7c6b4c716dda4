"""Which teacher-labelled rows a student trains on: all of them (default), only those the teacher is
sure of (`train.min_confidence`), and/or as many of each class (`train.balance_part1`).

Both rules act on part.1 only: gold rows (part.0) are always kept.
"""

from __future__ import annotations

import random

import numpy as np

from .batching import softmax
from .data.io import Example
from .data.labels import LabelMap


def confidence(ex: Example) -> float | None:
    """The teacher's top probability for a row (from its probs, else its logits); None without scores."""
    if ex.probs is not None:
        return float(max(ex.probs))
    if ex.logits is not None:
        return float(softmax(np.asarray([ex.logits], dtype=np.float64))[0].max())
    return None


def select_indices(
    labels: list[str],
    confidences: list[float | None],
    label_map: LabelMap,
    min_confidence: float = 0.0,
    balance: bool = False,
    seed: int = 1,
) -> tuple[list[int], str]:
    """(indices of the kept rows in their original order, a sentence saying what was dropped), from each
    row's hard label and confidence (None: no scores, always kept). See `select_part1`."""
    n_rows = len(labels)
    kept = [i for i, c in enumerate(confidences) if min_confidence <= 0 or c is None or c >= min_confidence]
    why = []
    if len(kept) < n_rows:
        why.append(f"{n_rows - len(kept)} below confidence {min_confidence:g}")
    if balance and kept:
        by_label: dict[str, list[int]] = {}
        for j, i in enumerate(kept):
            by_label.setdefault(labels[i], []).append(j)
        n = min(len(by_label.get(lab, [])) for lab in label_map.labels)
        rng = random.Random(seed)
        keep = sorted(j for idx in by_label.values() for j in (idx if len(idx) <= n else rng.sample(idx, n)))
        if len(keep) < len(kept):
            why.append(f"{len(kept) - len(keep)} to balance the classes ({n} each)")
        kept = [kept[j] for j in keep]
    summary = f"part.1: kept {len(kept)} of {n_rows} rows" + (f" (dropped {'; '.join(why)})" if why else "")
    return kept, summary


def select_part1(
    rows: list[Example], label_map: LabelMap, min_confidence: float = 0.0, balance: bool = False, seed: int = 1
) -> tuple[list[Example], str]:
    """(kept rows in their original order, a sentence saying what was dropped).

    min_confidence: keep rows whose top probability is >= it (rows without scores are kept).
    balance: then keep, per hard label, as many rows as the rarest label has (a fixed random sample).
    """
    idx, summary = select_indices(
        [ex.label for ex in rows], [confidence(ex) for ex in rows], label_map, min_confidence, balance, seed
    )
    return [rows[i] for i in idx], summary
