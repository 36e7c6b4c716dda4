"""torch vs ONNX vs ONNX INT8 for each student on ChnSentiCorp: accuracy, parity, latency, throughput.

    python bench/bench_export.py                      # trains examples/cls_{bow,cnn,lstm}_ch.json, exports, measures
    python bench/bench_export.py --epochs 2           # shorter training (parity and speed do not need the best model)
    python bench/bench_export.py --reuse              # measure folders already trained under --work

For each student: `datadistill export` to WORK/<arch>.onnx and (--quantize int8) WORK/<arch>.int8; then,
per runtime, test accuracy, the largest |probability - torch's| over the whole test set, one-text
latency (p50, p99; tokenization included) and batch throughput (256 texts a batch, length-sorted),
all with the same number of threads (--threads, default 1). Prints a table and writes bench/out/export.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent

from datadistill import train_student  # noqa: E402
from datadistill.export import export_folder  # noqa: E402
from datadistill.log import setup_logging  # noqa: E402
from datadistill.onnx_predict import OnnxPredictor  # noqa: E402
from datadistill.predict import Predictor  # noqa: E402
from datadistill.speed import latency, throughput  # noqa: E402


def read_tsv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["text_a"] for r in rows], [r["label"] for r in rows]


def folder_mb(folder: Path, name: str) -> float:
    return (folder / name).stat().st_size / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", nargs="+", default=["bow", "cnn", "lstm"])
    ap.add_argument("--work", default="work/bench/export")
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/chnsenticorp"))
    ap.add_argument("--epochs", type=int, help="override the example configs' epochs")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="measure the model folders already trained under --work (train the missing)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads of both runtimes (default 1: with more, torch's OpenMP threads collapse "
        "when another job shares the cores)",
    )
    ap.add_argument("--out", default=str(HERE / "out" / "export.json"))
    args = ap.parse_args()
    setup_logging(0)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    data, work = Path(args.data), Path(args.work)
    texts, gold = read_tsv(data / "test.tsv")
    rows = []
    for arch in args.archs:
        folder = work / arch
        if not (args.reuse and (folder / "model.safetensors").is_file()):
            overrides = [f"output={folder}"] + [f"data.{s}={data / (s + '.tsv')}" for s in ("train", "dev", "test")]
            if args.epochs:
                overrides.append(f"train.epochs={args.epochs}")
            train_student(str(HERE.parent / "examples" / f"cls_{arch}_ch.json"), overrides=overrides)
        cmd = "python bench/bench_export.py"
        export_folder(folder, work / f"{arch}.onnx", command=cmd)
        export_folder(folder, work / f"{arch}.int8", quantize="int8", command=cmd)
        runtimes = {
            "torch": (Predictor(folder), folder_mb(folder, "model.safetensors")),
            "onnx": (
                OnnxPredictor(work / f"{arch}.onnx", threads=args.threads),
                folder_mb(work / f"{arch}.onnx", "model.onnx"),
            ),
            "onnx-int8": (
                OnnxPredictor(work / f"{arch}.int8", threads=args.threads),
                folder_mb(work / f"{arch}.int8", "model.onnx"),
            ),
        }
        ref = runtimes["torch"][0].predict_proba(texts)
        for name, (pred, mb) in runtimes.items():
            probs = ref if name == "torch" else pred.predict_proba(texts)
            acc = float(np.mean([pred.labels[i] == g for i, g in zip(probs.argmax(1), gold)]))
            p50, p99 = latency(pred.predict, texts)
            rows.append(
                dict(
                    arch=arch,
                    runtime=name,
                    test_accuracy=acc,
                    max_abs_prob_diff=float(np.abs(probs - ref).max()),
                    label_changes=int((probs.argmax(1) != ref.argmax(1)).sum()),
                    p50_ms=p50,
                    p99_ms=p99,
                    texts_per_s=throughput(pred.predict, texts * 2),
                    model_mb=mb,
                )
            )
            r = rows[-1]
            print(
                f"{arch} {name}: acc {acc * 100:.2f}, max |dp| {r['max_abs_prob_diff']:.1e}, p50 {p50:.3f} ms, "
                f"{r['texts_per_s']:,.0f} texts/s",
                file=sys.stderr,
            )
    print(
        f"\n{'student':<8} {'runtime':<10} {'test acc':>8} {'max |p - torch|':>15} {'changed':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'texts/s':>9} {'MB':>6}"
    )
    for r in rows:
        print(
            f"{r['arch']:<8} {r['runtime']:<10} {r['test_accuracy'] * 100:8.2f} {r['max_abs_prob_diff']:15.1e} "
            f"{r['label_changes']:7d} {r['p50_ms']:7.3f} {r['p99_ms']:7.3f} {r['texts_per_s']:9,.0f} {r['model_mb']:6.2f}"
        )
    import onnxruntime

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            dict(
                machine=f"{platform.machine()}, {os.cpu_count()} cores",
                torch=torch.__version__,
                onnxruntime=onnxruntime.__version__,
                threads=args.threads,
                load_average_before=load_before,
                load_average_after=os.getloadavg(),
                test_texts=len(texts),
                command=" ".join(["python", *sys.argv]),
                rows=rows,
            ),
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
