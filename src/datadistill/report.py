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
from typing import Callable

import numpy as np
import torch

from .data.io import ExampleReader, model_files
from .evaluate import classification_metrics
from .speed import latency, throughput


def _size_mb(folder: Path) -> float:
    """The model's files: not the teacher's score cache or step records kept beside them."""
    return sum(f.stat().st_size for f in model_files(folder)) / 2**20


def _row(name: str, kind: str, labels: list[str], predict_ids, predict_batch, texts, gold, params: int, folder: Path,
         lat_n: int, tput_texts: list[str]) -> dict:
    m = classification_metrics(gold, predict_ids(texts), labels)
    p50, p99 = latency(predict_batch, texts, n=lat_n)
    return {"model": name, "kind": kind, "test_accuracy": m["accuracy"], "test_macro_f1": m["macro_f1"],
            "parameters": params, "size_mb": _size_mb(folder), "texts_per_s": throughput(predict_batch, tput_texts),
            "p50_ms": p50, "p99_ms": p99}


def write_report(work: Path, cfg, model_names: list[str], out: Path, log: Callable[[str], None] = print,
                 teacher_rows: int = 256, teacher_dir: Path | None = None, teacher_precision: str = "auto") -> dict:
    """Measure the teacher (in `teacher_dir`, default WORK/teacher; in the precision it labels with) and
    every student; write report.md/json/png."""
    from .predict import Predictor
    from .teacher.hf import HFTeacher

    test = list(ExampleReader(cfg.data.test, label_column=cfg.data.label_column))
    texts = [e.text_a for e in test]
    teacher_dir = Path(teacher_dir or work / "teacher")
    teacher = HFTeacher(teacher_dir, device="cpu", precision=teacher_precision)
    labels = teacher.label_names
    gold = np.array([labels.index(e.label) for e in test])
    t_params = sum(p.numel() for p in teacher.model.parameters())
    log(f"[report] measuring the teacher ({t_params:,} parameters, {teacher.precision}) on {len(texts)} test texts")
    rows = [_row("teacher", "teacher", labels, lambda ts: np.array([labels.index(x) for x in teacher.score(ts).labels]),
                 lambda ts: teacher.score(ts), texts, gold, t_params, teacher_dir, 20, texts[:teacher_rows])]
    for name in model_names:
        folder = work / "student" / name
        pred = Predictor(folder)
        params = json.loads((folder / "metrics.json").read_text())["parameters"]
        log(f"[report] measuring {name}")
        ids = lambda ts, p=pred: p.logits(ts).argmax(-1)  # noqa: E731
        rows.append(_row(name, "baseline" if name.endswith("_base") else "distilled", labels, ids, pred.predict, texts,
                         gold, params, folder, 300, texts * 2))
    rows[0]["precision"] = teacher.precision
    t_rate = rows[0]["texts_per_s"]
    for r in rows:
        r["speedup"] = r["texts_per_s"] / t_rate
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                         f"{torch.get_num_threads()} threads", "test": str(cfg.data.test), "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    lines = ["| model | kind | test acc | macro-F1 | parameters | MB | texts/s | p50 ms | p99 ms | speed-up |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['kind']} | {r['test_accuracy'] * 100:.2f} | {r['test_macro_f1'] * 100:.2f} | "
                     f"{r['parameters']:,} | {r['size_mb']:.1f} | {r['texts_per_s']:,.0f} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['speedup']:,.0f}x |")
    md = (f"# Distillation report\n\nTest set: `{cfg.data.test}` ({len(texts)} texts). Machine: {report['machine']}. "
          f"Speed includes tokenization, measured in this run on the CPU (teacher in {teacher.precision}, as it "
          f"labels; its throughput on the first {min(teacher_rows, len(texts))} test texts, latency on 20; "
          f"students on all of them).\n\n"
          + "\n".join(lines) + "\n")
    (out / "report.md").write_text(md, encoding="utf-8")
    _plot(rows, out / "accuracy_vs_speed.png", log)
    log("[report]\n" + "\n".join(lines))
    return report


def _plot(rows: list[dict], path: Path, log) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("[report] no accuracy_vs_speed.png: matplotlib is not installed (pip install 'datadistill[report]')")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"teacher": "black", "baseline": "tab:gray", "distilled": "tab:red"}
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
