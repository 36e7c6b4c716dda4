"""The pipeline's report: every model's test accuracy, size and speed, measured in one run on this CPU.

Writes report.md, report.json and accuracy_vs_speed.png (if matplotlib is installed:
pip install 'datadistill[report]'). Speed includes tokenization: batch throughput on the test texts
and single-text latency; the speed-up is a student's throughput over the teacher's, same machine,
same run.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from .data.cache import model_files
from .data.io import ExampleReader
from .data.labels import LabelMap
from .evaluate import auc_text, finite, positive_label, ratio_text, task_metrics
from .label import teacher_view
from .layout import Layout
from .log import logger
from .speed import latency, throughput

log = logger.getChild("report")


def _size_mb(folder: Path) -> float:
    """The model's files: not the teacher's score cache or step records kept beside them."""
    return sum(f.stat().st_size for f in model_files(folder)) / 2**20 if folder.is_dir() else 0.0


class TestSet:
    """The test file as the report reads it: texts (and pairs), gold ids, the examples (for groups)."""

    def __init__(self, path, label_column: str, label_map: LabelMap) -> None:
        self.examples = list(ExampleReader(path, label_column=label_column, label_map=label_map))
        self.texts_a = [e.text_a for e in self.examples]
        pair = any(e.text_b is not None for e in self.examples)
        self.texts_b = [e.text_b or "" for e in self.examples] if pair else None
        self.gold = np.array([label_map.id(e.label) for e in self.examples])
        self.items = list(zip(self.texts_a, self.texts_b or [None] * len(self.texts_a)))

    def __len__(self) -> int:
        return len(self.examples)


def _on_items(probs_fn):
    """A model's `probs(texts_a, texts_b)` as a function of (text_a, text_b) items, for the speed meters."""
    return lambda items: probs_fn([a for a, _ in items], [b for _, b in items] if items[0][1] is not None else None)


def _row(
    name: str,
    kind: str,
    probs_fn,
    test: TestSet,
    labels: list[str],
    positive: str | None,
    params: int | None,
    size_mb: float,
    lat_n: int | None,  # texts answered one at a time (None: speed.latency's default)
    tput_items: list,
) -> dict:
    """One model measured: metrics on the whole test set from its scores [N, C], then its speed."""
    m = task_metrics(test.gold, probs_fn(test.texts_a, test.texts_b), labels, positive, test.examples)
    p50, p99 = latency(_on_items(probs_fn), test.items, n=lat_n)
    row = {
        "model": name,
        "kind": kind,
        "test_accuracy": m["accuracy"],
        "test_macro_f1": m["macro_f1"],
        "test_f1": {lab: c["f1"] for lab, c in m["per_class"].items()},
        "parameters": params,
        "size_mb": size_mb,
        "texts_per_s": throughput(_on_items(probs_fn), tput_items),
        "p50_ms": p50,
        "p99_ms": p99,
    }
    if "ranking" in m:
        row["ranking"] = m["ranking"]
    return row


def _classical_row(layout: Layout, data, label_map: LabelMap, test: TestSet, positive: str | None) -> dict:
    """TF-IDF over character 1-3-grams + a linear SVM, trained on part.0 (the gold labels) in this step."""
    from .classical import ClassicalBaseline

    part0 = list(ExampleReader(layout.part0, label_column=data.label_column, label_map=label_map))
    log.info(f"[report] training and measuring the classical baseline on part.0 ({len(part0)} rows)")
    clf = ClassicalBaseline().fit(
        [e.text_a for e in part0],
        np.array([label_map.id(e.label) for e in part0]),
        [e.text_b or "" for e in part0] if test.texts_b is not None else None,
    )
    return _row(
        "classical",
        "classical",
        clf.scores,
        test,
        label_map.labels,
        positive,
        clf.parameters(),
        clf.size_mb(),
        None,
        test.items * 2,
    )


def _memo_on(texts_a: list, probs_fn):
    """`probs_fn` that answers a call on `texts_a` itself (the whole test set) once: the teacher's test
    scores serve its row and the ensemble's."""
    memo: dict = {}

    def probs(a, b=None):
        if a is not texts_a:
            return probs_fn(a, b)
        if "p" not in memo:
            memo["p"] = probs_fn(a, b)
        return memo["p"]

    return probs


def _ensemble_row(
    layout: Layout, data, label_map: LabelMap, test: TestSet, positive, teacher_probs, teacher_row, teacher_rows
) -> dict | None:
    """The ensemble teacher that labelled part.1 (label.classical_weight > 0), measured like the teacher:
    its scores are the teacher's and a calibrated classical model's (fitted on part.0 here), averaged."""
    from .ensemble import blend, fit_member, read_record

    record = read_record(layout.ensemble)
    if not record or not record["weight"]:
        return None
    w = record["weight"]
    part0 = list(ExampleReader(layout.part0, label_column=data.label_column, label_map=label_map))
    log.info(f"[report] measuring the ensemble teacher (classical weight {w:g})")
    member = fit_member(part0, label_map)

    def probs(a, b=None):
        return blend(teacher_probs(a, b), member.probs(a, b), w)

    row = _row(
        "ensemble",
        "teacher",
        probs,
        test,
        label_map.labels,
        positive,
        teacher_row["parameters"] and teacher_row["parameters"] + member.parameters(),  # unknown stays unknown
        teacher_row["size_mb"] and teacher_row["size_mb"] + member.size_mb(),
        20,
        test.items[:teacher_rows],
    )
    row["classical_weight"] = w
    return row


def _teacher_probs(teacher, labels: list[str]):
    """The teacher's probabilities [N, C], of the texts as labelling sends them; one-hot of its labels when
    it gives none (an external program)."""
    ids = {lab: i for i, lab in enumerate(labels)}

    def probs(texts_a, texts_b=None):
        sc = teacher.score(
            teacher_view(teacher, texts_a), teacher_view(teacher, texts_b) if texts_b is not None else None
        )
        if sc.probs is not None:
            return np.asarray(sc.probs)
        out = np.zeros((len(texts_a), len(labels)))
        for i, lab in enumerate(sc.labels):
            if lab in ids:
                out[i, ids[lab]] = 1.0
        return out

    return probs


def _compared(row: dict, multiclass: bool) -> list[tuple[str, str, float]]:
    """The (key, name, value) scores a warning compares: accuracy, and macro-F1 for more than two
    classes (minority classes) or the pair-order ratio for a ranked positive class."""
    out = [("test_accuracy", "accuracy", row["test_accuracy"] * 100)]
    if multiclass:
        out.append(("test_macro_f1", "macro-F1", row["test_macro_f1"] * 100))
    if "ranking" in row:  # nothing reversed: an infinite ratio, above any other
        out.append(("pair_order", "pair-order ratio", float(row["ranking"]["pair_order"])))
    return out


def _warnings(rows: list[dict], multiclass: bool, source: dict) -> list[str]:
    """What a user should know: the model part.1 came from (`source`: the teacher or the ensemble) not
    above a classical or baseline row; a distilled student below its baseline."""
    t_scores = _compared(source, multiclass)
    out = []
    for r in rows[1:]:
        if r["kind"] in ("classical", "baseline"):
            for (_, what, tv), (_, _, rv) in zip(t_scores, _compared(r, multiclass)):
                if rv >= tv:
                    out.append(
                        f"the {source['model']} ({what} {tv:.2f}) is not above {r['model']} ({rv:.2f}) on test: "
                        f"distilling it cannot be expected to help"
                    )
        base = next((b for b in rows if b["model"] == f"{r['model']}_base"), None)
        if r["kind"] == "distilled" and base is not None:
            for (_, what, dv), (_, _, bv) in zip(_compared(r, multiclass), _compared(base, multiclass)):
                if bv > dv:
                    out.append(
                        f"distilled {r['model']} ({what} {dv:.2f}) is below its baseline {base['model']} ({bv:.2f}) on test"
                    )
    return out


def write_report(
    layout: Layout,
    data,
    model_names: list[str],
    teacher,
    labels: list[str],
    teacher_rows: int = 256,
) -> dict:
    """Measure the teacher (the pipeline's, in the precision it labels with), the classical baseline and
    every student on `data.test`; write report.md/json/png into `layout.report`."""
    from .predict import Predictor

    out = layout.report
    label_map = LabelMap(labels)  # the data's order: the students' ids and the teacher's answers use it
    test = TestSet(data.test, data.label_column, label_map)
    positive = positive_label(labels, getattr(data, "positive_label", None))
    multiclass = len(labels) > 2
    t_params = teacher.parameters()
    precision = getattr(teacher, "precision", "its own precision")
    log.info(
        f"[report] measuring the teacher ({f'{t_params:,}' if t_params else 'unknown'} parameters, {precision}) "
        f"on {len(test)} test texts"
    )
    teacher_probs = _memo_on(test.texts_a, _teacher_probs(teacher, labels))
    rows = [
        _row(
            "teacher",
            "teacher",
            teacher_probs,
            test,
            labels,
            positive,
            t_params,
            _size_mb(layout.teacher),
            20,
            test.items[:teacher_rows],
        )
    ]
    ensemble = _ensemble_row(layout, data, label_map, test, positive, teacher_probs, rows[0], teacher_rows)
    rows += [ensemble] if ensemble else []
    rows.append(_classical_row(layout, data, label_map, test, positive))
    for name in model_names:
        folder = layout.student(name)
        pred = Predictor(folder)
        params = json.loads((folder / "metrics.json").read_text())["parameters"]
        log.info(f"[report] measuring {name}")
        rows.append(
            _row(
                name,
                "baseline" if name.endswith("_base") else "distilled",
                pred.predict_proba,
                test,
                labels,
                positive,
                params,
                _size_mb(folder),
                None,
                test.items * 2,
            )
        )
    rows[0]["precision"] = precision
    warnings = _warnings(rows, multiclass, source=ensemble or rows[0])
    for w in warnings:
        log.warning(f"[report] {w}")
    t_rate = rows[0]["texts_per_s"]
    for r in rows:
        r["speedup"] = r["texts_per_s"] / t_rate
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "test": str(data.test),
        "pairs": test.texts_b is not None,
        "labels": labels,
        "rows": rows,
        "warnings": warnings,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(finite(report), indent=1, ensure_ascii=False), encoding="utf-8")
    table = _main_table(rows)
    what = "text pairs" if test.texts_b is not None else "texts"
    md = (
        f"# Distillation report\n\nTest set: `{data.test}` ({len(test)} {what}, {len(labels)} labels). "
        f"Machine: {report['machine']}. Speed includes tokenization, measured in this run on the CPU "
        f"(teacher in {precision}, as it labels; its throughput on the first {min(teacher_rows, len(test))} "
        f"test {what}, latency on 20; the others on all of them).\n\n" + table + "\n"
    )
    if "ranking" in rows[0]:
        r = rows[0]["ranking"]
        groups = f" ({r['groups']:,} groups)" if r["groups"] else ""
        md += (
            f"\nPositive class '{r['positive']}': F1 of that class; AUC and the pair-order ratio (正逆序比: "
            f"positive-negative pairs ordered correctly ÷ reversed) of its score, counted {r['grouping']}"
            f"{groups}, {r['pairs']:,} pairs.\n"
        )
    if multiclass:
        md += "\n" + _per_class_table(rows, labels) + "\n"
    md += "".join(f"\n**Warning:** {w}.\n" for w in warnings)
    (out / "report.md").write_text(md, encoding="utf-8")
    _plot(rows, out / "accuracy_vs_speed.png")
    log.info("[report]\n" + table)
    return report


def _main_table(rows: list[dict]) -> str:
    ranked = "ranking" in rows[0]
    head = "| model | kind | test acc | macro-F1 |" + (" F1 (pos) | AUC | pair-order |" if ranked else "")
    head += " parameters | MB | texts/s | p50 ms | p99 ms | speed-up |"
    lines = [head, "| --- | --- |" + " ---: |" * (head.count("|") - 3)]
    for r in rows:
        params = f"{r['parameters']:,}" if r["parameters"] else "–"  # an external teacher's size is unknown
        size = f"{r['size_mb']:.1f}" if r["size_mb"] else "–"
        cells = [r["model"], r["kind"], f"{r['test_accuracy'] * 100:.2f}", f"{r['test_macro_f1'] * 100:.2f}"]
        if ranked:
            k = r["ranking"]
            cells += [f"{k['f1_positive'] * 100:.2f}", auc_text(k), ratio_text(k)]
        cells += [params, size, f"{r['texts_per_s']:,.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}"]
        cells.append(f"{r['speedup']:,.0f}x" if r["speedup"] >= 1 else f"{r['speedup']:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _per_class_table(rows: list[dict], labels: list[str]) -> str:
    """Test F1 per class (rows) and model (columns), with each class's support."""
    lines = [
        "Test F1 per class:\n",
        "| class | " + " | ".join(r["model"] for r in rows) + " |",
        "| --- |" + " ---: |" * len(rows),
    ]
    for lab in labels:
        lines.append(f"| {lab} | " + " | ".join(f"{r['test_f1'][lab] * 100:.2f}" for r in rows) + " |")
    lines.append("| **macro-F1** | " + " | ".join(f"**{r['test_macro_f1'] * 100:.2f}**" for r in rows) + " |")
    return "\n".join(lines)


def _plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("[report] no accuracy_vs_speed.png: matplotlib is not installed (pip install 'datadistill[report]')")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"teacher": "black", "classical": "tab:blue", "baseline": "tab:gray", "distilled": "tab:red"}
    for r in rows:
        ax.scatter(r["texts_per_s"], r["test_accuracy"] * 100, color=colors[r["kind"]], s=40)
        ax.annotate(r["model"], (r["texts_per_s"], r["test_accuracy"] * 100), textcoords="offset points", xytext=(5, 4))
    ax.set_xscale("log")
    ax.set_xlabel("texts per second on this CPU (log scale, tokenization included)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs speed: teacher, baseline and distilled students")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
