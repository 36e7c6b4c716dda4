"""Baseline students on ChnSentiCorp (no distillation): accuracy and speed in one table.

    python bench/bench_students.py                 # trains examples/cls_{bow,cnn,lstm}_ch.json
    python bench/bench_students.py --reuse         # measure folders already trained under --work

Prints a table and writes bench/out/students.json. Throughput is batch mode (256 texts a batch,
length-sorted) and latency one text at a time, both from raw text (tokenization included), on this
machine's CPU with torch's default threads, measured side by side in this run; bf16/s repeats the
batch measurement with bfloat16 autocast (`predict --bf16`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

from datadistill.speed import latency, throughput  # noqa: E402

from datadistill import load_model, train_student  # noqa: E402
from datadistill.data import read_examples  # noqa: E402
from datadistill.predict import Predictor  # noqa: E402
from datadistill.student import evaluate_folder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", nargs="+", default=["bow", "cnn", "lstm"])
    ap.add_argument("--work", default="work/bench/students")
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/chnsenticorp"))
    ap.add_argument("--reuse", action="store_true", help="measure existing model folders, do not train")
    ap.add_argument("--out", default=str(HERE / "out" / "students.json"))
    args = ap.parse_args()
    data = Path(args.data)
    test = read_examples(data / "test.tsv")
    test_texts, test_labels = [ex.text_a for ex in test], [ex.label for ex in test]
    rows = []
    for arch in args.archs:
        folder = Path(args.work) / arch
        if not args.reuse:
            train_student(
                str(HERE.parent / "examples" / f"cls_{arch}_ch.json"),
                progress=False,
                overrides=[
                    f"output={folder}",
                    f"data.train={data / 'train.tsv'}",
                    f"data.dev={data / 'dev.tsv'}",
                    f"data.test={data / 'test.tsv'}",
                ],
            )
        saved = json.loads((folder / "metrics.json").read_text())
        test = evaluate_folder(folder, data / "test.tsv")
        pred = load_model(folder)
        tput = throughput(pred.predict, test_texts * 2)
        p50, p99 = latency(pred.predict, test_texts)
        bf16 = Predictor(folder, bf16=True)
        tput_bf16 = throughput(bf16.predict, test_texts * 2)
        acc_bf16 = sum(a == b for a, b in zip(bf16.predict(test_texts), test_labels)) / len(test_labels)
        size = sum(f.stat().st_size for f in folder.iterdir())
        rows.append(
            dict(
                arch=arch,
                tokenizer=pred.featurizer.cfg.tokenizer,
                test_accuracy=test["accuracy"],
                test_macro_f1=test["macro_f1"],
                dev_accuracy=saved["dev"]["accuracy"],
                parameters=saved["parameters"],
                size_mb=size / 2**20,
                train_seconds=saved["train_seconds"],
                texts_per_s=tput,
                p50_ms=p50,
                p99_ms=p99,
                texts_per_s_bf16=tput_bf16,
                test_accuracy_bf16=acc_bf16,
            )
        )
    seed = {"bow": 90.1, "cnn": 91.6, "lstm": 91.2}
    print(
        f"{'student':<8} {'tok':<6} {'test acc':>8} {'seed':>5} {'F1':>6} {'dev':>6} {'params':>11} {'MB':>6} "
        f"{'train s':>8} {'texts/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'bf16/s':>8} {'bf16 acc':>8}"
    )
    for r in rows:
        print(
            f"{r['arch']:<8} {r['tokenizer']:<6} {r['test_accuracy'] * 100:8.2f} {seed.get(r['arch'], 0):5.1f} "
            f"{r['test_macro_f1'] * 100:6.2f} {r['dev_accuracy'] * 100:6.2f} {r['parameters']:>11,} "
            f"{r['size_mb']:6.1f} {r['train_seconds']:8.0f} {r['texts_per_s']:9,.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{r['texts_per_s_bf16']:8,.0f} {r['test_accuracy_bf16'] * 100:8.2f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            dict(
                machine=f"{platform.machine()}, {os.cpu_count()} cores",
                torch=torch.__version__,
                threads=torch.get_num_threads(),
                rows=rows,
            ),
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
