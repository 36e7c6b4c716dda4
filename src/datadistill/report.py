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
from .evaluate import classification_metrics
from .layout import Layout
from .log import logger
from .speed import latency, throughput

log = logger.getChild("report")


def _size_mb(folder: Path) -> float:
    """The model's files: not the teacher's score cache or step records kept beside them."""
    return sum(f.stat().st_size for f in model_files(folder)) / 2**20 if folder.is_dir() else 0.0


def _row(
    name: str,
    kind: str,
    labels: list[str],
    predict_ids,
    predict_batch,
    texts,
    gold,
    params: int | None,
    size_mb: float,
    lat_n: int,
    tput_texts: list[str],
) -> dict:
    m = classification_metrics(gold, predict_ids(texts), labels)
    p50, p99 = latency(predict_batch, texts, n=lat_n)
    return {
        "model": name,
        "kind": kind,
        "test_accuracy": m["accuracy"],
        "test_macro_f1": m["macro_f1"],
        "parameters": params,
        "size_mb": size_mb,
        "texts_per_s": throughput(predict_batch, tput_texts),
        "p50_ms": p50,
        "p99_ms": p99,
    }


def _classical_row(layout: Layout, data, label_map: LabelMap, texts: list[str], gold: np.ndarray) -> dict:
    """TF-IDF over character 1-3-grams + a linear SVM, trained on part.0 (the gold labels) in this step."""
    from .classical import ClassicalBaseline

    part0 = list(ExampleReader(layout.part0, label_column=data.label_column, label_map=label_map))
    log.info(f"[report] training and measuring the classical baseline on part.0 ({len(part0)} rows)")
    clf = ClassicalBaseline().fit([e.text_a for e in part0], np.array([label_map.id(e.label) for e in part0]))
    return _row(
        "classical",
        "classical",
        label_map.labels,
        clf.predict_ids,
        clf.predict_ids,
        texts,
        gold,
        clf.parameters(),
        clf.size_mb(),
        300,
        texts * 2,
    )


def write_report(
    layout: Layout, data, model_names: list[str], teacher, labels: list[str], teacher_rows: int = 256
) -> dict:
    """Measure the teacher (the pipeline's, in the precision it labels with) and every student on
    `data.test`; write report.md/json/png into `layout.report`."""
    from .predict import Predictor

    out = layout.report
    label_map = LabelMap(labels)  # the data's order: the students' ids and the teacher's answers use it
    test = list(ExampleReader(data.test, label_column=data.label_column, label_map=label_map))
    texts = [e.text_a for e in test]
    gold = np.array([label_map.id(e.label) for e in test])
    t_params = teacher.parameters()
    precision = getattr(teacher, "precision", "its own precision")
    log.info(
        f"[report] measuring the teacher ({f'{t_params:,}' if t_params else 'unknown'} parameters, {precision}) "
        f"on {len(texts)} test texts"
    )
    ids = {lab: i for i, lab in enumerate(labels)}
    rows = [
        _row(
            "teacher",
            "teacher",
            labels,
            lambda ts: np.array([ids.get(x, -1) for x in teacher.score(ts).labels]),
            lambda ts: teacher.score(ts),
            texts,
            gold,
            t_params,
            _size_mb(layout.teacher),
            20,
            texts[:teacher_rows],
        )
    ]
    rows.append(_classical_row(layout, data, label_map, texts, gold))
    for name in model_names:
        folder = layout.student(name)
        pred = Predictor(folder)
        params = json.loads((folder / "metrics.json").read_text())["parameters"]
        log.info(f"[report] measuring {name}")
        ids = lambda ts, p=pred: p.logits(ts).argmax(-1)  # noqa: E731
        rows.append(
            _row(
                name,
                "baseline" if name.endswith("_base") else "distilled",
                labels,
                ids,
                pred.predict,
                texts,
                gold,
                params,
                _size_mb(folder),
                300,
                texts * 2,
            )
        )
    rows[0]["precision"] = precision
    warnings = [
        f"the teacher ({rows[0]['test_accuracy'] * 100:.2f}) is not above {r['model']} "
        f"({r['test_accuracy'] * 100:.2f}) on test: distilling it cannot be expected to help"
        for r in rows[1:]
        if r["kind"] in ("classical", "baseline") and r["test_accuracy"] >= rows[0]["test_accuracy"]
    ]
    warnings += [
        f"distilled {r['model']} ({r['test_accuracy'] * 100:.2f}) is below its baseline {r['model']}_base "
        f"({base['test_accuracy'] * 100:.2f}) on test"
        for r in rows
        if r["kind"] == "distilled"
        for base in rows
        if base["model"] == f"{r['model']}_base" and base["test_accuracy"] > r["test_accuracy"]
    ]
    for w in warnings:
        log.warning(f"[report] {w}")
    t_rate = rows[0]["texts_per_s"]
    for r in rows:
        r["speedup"] = r["texts_per_s"] / t_rate
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "test": str(data.test),
        "rows": rows,
        "warnings": warnings,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    lines = [
        "| model | kind | test acc | macro-F1 | parameters | MB | texts/s | p50 ms | p99 ms | speed-up |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        params = f"{r['parameters']:,}" if r["parameters"] else "–"  # an external teacher's size is unknown
        size = f"{r['size_mb']:.1f}" if r["size_mb"] else "–"
        lines.append(
            f"| {r['model']} | {r['kind']} | {r['test_accuracy'] * 100:.2f} | {r['test_macro_f1'] * 100:.2f} | "
            f"{params} | {size} | {r['texts_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['speedup']:,.0f}x |"
        )
    md = (
        f"# Distillation report\n\nTest set: `{data.test}` ({len(texts)} texts). Machine: {report['machine']}. "
        f"Speed includes tokenization, measured in this run on the CPU (teacher in {precision}, as it "
        f"labels; its throughput on the first {min(teacher_rows, len(texts))} test texts, latency on 20; "
        f"students on all of them).\n\n" + "\n".join(lines) + "\n" + "".join(f"\n**Warning:** {w}.\n" for w in warnings)
    )
    (out / "report.md").write_text(md, encoding="utf-8")
    _plot(rows, out / "accuracy_vs_speed.png")
    log.info("[report]\n" + "\n".join(lines))
    return report


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
