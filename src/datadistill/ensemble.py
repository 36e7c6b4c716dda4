"""An ensemble teacher: the fine-tuned teacher's probabilities averaged with a classical model's.

    p = (1 - w) * p_teacher + w * p_classical

The classical member is the report's TF-IDF + linear SVM, fitted on the same gold labels (part.0),
its decision values made probabilities by Platt scaling on held-out folds (classical.py). The two
make different mistakes (a transformer reading up to max_len tokens, a linear model over every
character n-gram of the whole text), so their average is usually better than either: the usual way
to get a teacher better than its parts without training a second big model.

`label.classical_weight` sets w: a number in [0, 1), or "auto" (the default) to take, from WEIGHTS,
the one with the best dev accuracy (plus macro-F1 for more than two classes); ties go to the smaller
weight, so a classical model that adds nothing leaves the teacher alone. "auto" blends only a
classical model at most CLOSE below the teacher in dev accuracy: far below it, the blend can still win
on dev while its softer, noisier labels make worse students (500 ChnSentiCorp labels, 4.75 points
apart; bench/RESULTS.md, "The ensemble teacher"), where within 3 points it made better ones (9,600
reviews, 0.42 apart; LCQMC, 2.80; 10 categories, the classical model above). The pipeline's label
step writes the teacher's own scores first (its score cache keeps them, so a new weight costs no
transformer time) and then part.1 from the blend (`blend_file`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data.io import PROB_SUM_TOLERANCE, ExampleReader, ExampleWriter, atomic_write
from .data.labels import LabelMap
from .evaluate import classification_metrics
from .log import logger
from .text.vocab import UNK

log = logger.getChild("ensemble")

WEIGHTS = tuple(round(0.1 * k, 1) for k in range(10))  # 0.0 .. 0.9: the classical model never alone
CLOSE = 0.03  # "auto": the most the calibrated classical model may be below the teacher in dev accuracy


def blend(probs_T: np.ndarray, probs_C: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * probs_T + weight * probs_C, both [N, C] in the same label order."""
    return (1.0 - weight) * np.asarray(probs_T, dtype=np.float64) + weight * np.asarray(probs_C, dtype=np.float64)


def check_probs(probs: np.ndarray, where: str) -> None:
    """Refuse scores that are not probabilities (rows of non-negative numbers summing to one): an
    external teacher may answer percentages or raw scores, and their average with the classical
    model's probabilities would mean nothing."""
    p = np.asarray(probs, dtype=np.float64)
    bad = np.flatnonzero(~(np.abs(p.sum(-1) - 1.0) <= PROB_SUM_TOLERANCE) | (p < 0).any(-1))  # NaN fails too
    if len(bad):
        from .errors import DataError

        row = ", ".join(f"{x:g}" for x in p[bad[0]])
        raise DataError(
            f"{where}: row {bad[0] + 1} has scores [{row}], not probabilities (non-negative, summing to 1): "
            f"an ensemble averages probabilities (make the teacher answer them, or set label.classical_weight to 0)"
        )


def dev_score(gold: np.ndarray, probs: np.ndarray, labels: list[str]) -> tuple[float, dict]:
    """What a weight is chosen by: accuracy, plus macro-F1 for more than two classes (where a teacher
    weak on the minority classes hurts them first). Returns (score, metrics)."""
    m = classification_metrics(gold, probs.argmax(-1), labels)
    return m["accuracy"] + (m["macro_f1"] if len(labels) > 2 else 0.0), m


def choose_weight(
    probs_T: np.ndarray, probs_C: np.ndarray, gold: np.ndarray, labels: list[str], weights=WEIGHTS
) -> tuple[float, list[dict]]:
    """The weight of `weights` whose blend scores best on dev (`dev_score`), the smaller one on ties;
    and every weight's dev accuracy and macro-F1 (for the log and the record)."""
    best_w, best, table = 0.0, -1.0, []
    for w in weights:
        score, m = dev_score(gold, blend(probs_T, probs_C, w), labels)
        table.append({"weight": w, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]})
        if score > best + 1e-12:
            best_w, best = w, score
    return best_w, table


def auto_weight(
    probs_T: np.ndarray, probs_C: np.ndarray, gold: np.ndarray, labels: list[str], close: float = CLOSE
) -> tuple[float, list[dict], float]:
    """label.classical_weight "auto": `choose_weight`'s weight and grid, or 0 and no grid when the
    classical model's dev accuracy is more than `close` below the teacher's. Returns (weight, grid, gap),
    gap = the teacher's dev accuracy minus the classical model's."""
    acc = lambda p: classification_metrics(gold, p.argmax(-1), labels)["accuracy"]  # noqa: E731
    gap = acc(np.asarray(probs_T)) - acc(np.asarray(probs_C))
    if gap > close + 1e-12:
        return 0.0, [], gap
    return (*choose_weight(probs_T, probs_C, gold, labels), gap)


def blend_file(src: str | Path, dst: str | Path, member, weight: float, labels: list[str], chunk: int = 4096) -> dict:
    """Rewrite a labelled file (label, texts, probs, logits: label.py's output) with the blend: each row's
    label becomes the blend's top label, probs the blend, logits its log (so a temperature still
    applies). `member.probs(texts_a, texts_b)` gives the classical probabilities. Rows without the
    teacher's probabilities are refused. Returns the label counts."""
    label_map = LabelMap(labels)
    reader = ExampleReader(src, require_label=False)
    counts: dict[str, int] = {}
    with open(src, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
    with atomic_write(dst) as out:
        writer = ExampleWriter(out, header)
        buf = []
        for ex in reader:
            buf.append(ex)
            if len(buf) == chunk:
                _write_blended(writer, buf, member, weight, label_map, counts, src)
                buf = []
        if buf:
            _write_blended(writer, buf, member, weight, label_map, counts, src)
    return counts


def _write_blended(writer, rows, member, weight, label_map: LabelMap, counts: dict, src) -> None:
    if any(ex.probs is None for ex in rows):
        from .errors import DataError

        raise DataError(f"{src}: a row has no probabilities: an ensemble needs the teacher's scores")
    probs_T = np.asarray([ex.probs for ex in rows])  # [B, C] in label-map order (label.py writes them so)
    check_probs(probs_T, f"{src}")
    pair = rows[0].text_b is not None
    # augmentation's [UNK] is no text to a classical model: a space (no n-gram of the review spans it)
    a = [ex.text_a.replace(UNK, " ") for ex in rows]
    b = [(ex.text_b or "").replace(UNK, " ") for ex in rows] if pair else None
    p = blend(probs_T, member.probs(a, b), weight)
    logits = np.log(np.clip(p, 1e-12, None))
    out = []
    for ex, row_p, row_z in zip(rows, p, logits):
        lab = label_map.labels[int(row_p.argmax())]
        counts[lab] = counts.get(lab, 0) + 1
        out.append({**_texts(ex), "label": lab, "probs": row_p.tolist(), "logits": row_z.tolist()})
    writer.write_many(out)


def _texts(ex) -> dict:
    return {"text_a": ex.text_a, "text_b": ex.text_b, "tokens_a": ex.tokens_a, "tokens_b": ex.tokens_b}


def fit_member(train, label_map: LabelMap):
    """The classical member, calibrated, fitted on the gold rows `train` (Examples)."""
    from .classical import ClassicalBaseline

    pair = train[0].text_b is not None
    return ClassicalBaseline(calibrated=True).fit(
        [e.text_a for e in train],
        np.array([label_map.id(e.label) for e in train]),
        [e.text_b or "" for e in train] if pair else None,
    )


def read_record(path: str | Path) -> dict | None:
    """The label step's ensemble record (weight and dev scores), or None when there is none."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
