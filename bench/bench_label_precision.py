"""fp32 against bf16 for a fine-tuned teacher on this CPU: labelling speed, agreement, test accuracy.

    python bench/bench_label_precision.py TEACHER_DIR AUGMENTED_FILE [--rows 384] [--test ../shared/data/chnsenticorp/test.tsv]

`label.precision: auto` picks bf16 on a CPU with native bf16 (AVX512-BF16 / AMX); this measures what
that buys and costs, both precisions in one run, alternating, so shared-machine noise hits both.
Prints a table and writes bench/out/label_precision.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from datadistill.data import ExampleReader, read_examples
from datadistill.teacher.hf import HFTeacher, cpu_has_native_bf16

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("teacher")
    ap.add_argument("augmented", help="texts as labelling sees them (WORK/student/unsup_train_aug)")
    ap.add_argument("--rows", type=int, default=384, help="augmented texts timed (random sample)")
    ap.add_argument("--test", default=str(HERE.parent.parent / "shared" / "data" / "chnsenticorp" / "test.tsv"))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    aug = [e.text_a for e in read_examples(args.augmented, require_label=False)]
    aug = [aug[i] for i in np.random.default_rng(1).choice(len(aug), min(args.rows, len(aug)), replace=False)]
    test = list(ExampleReader(args.test))
    teachers = {
        p: HFTeacher(args.teacher, batch_size=args.batch_size, device="cpu", precision=p) for p in ("fp32", "bf16")
    }
    rates: dict[str, list[float]] = {p: [] for p in teachers}
    scores = {}
    for _ in range(args.repeats):
        for p, t in teachers.items():
            t0 = time.perf_counter()
            scores[p] = t.score(aug)
            rates[p].append(len(aug) / (time.perf_counter() - t0))
    rows = []
    for p, t in teachers.items():
        sc = t.score([e.text_a for e in test])
        rows.append(
            {
                "precision": p,
                "labels_per_s": max(rates[p]),
                "all_rates": rates[p],
                "test_accuracy": float(np.mean([a == e.label for a, e in zip(sc.labels, test)])),
                "label_agreement_with_fp32": float(
                    np.mean(np.array(scores[p].labels) == np.array(scores["fp32"].labels))
                ),
                "max_abs_prob_diff": float(np.abs(scores[p].probs - scores["fp32"].probs).max()),
                "mean_abs_prob_diff": float(np.abs(scores[p].probs - scores["fp32"].probs).mean()),
            }
        )
    speedup = rows[1]["labels_per_s"] / rows[0]["labels_per_s"]
    print(f"{'precision':<9} {'labels/s':>9} {'test acc':>9} {'agree':>7} {'max|dp|':>8} {'mean|dp|':>9}")
    for r in rows:
        print(
            f"{r['precision']:<9} {r['labels_per_s']:9.1f} {r['test_accuracy'] * 100:9.2f} "
            f"{r['label_agreement_with_fp32'] * 100:6.2f}% {r['max_abs_prob_diff']:8.4f} {r['mean_abs_prob_diff']:9.5f}"
        )
    print(f"bf16 / fp32 labelling speed: {speedup:.2f}x (native bf16 on this CPU: {cpu_has_native_bf16()})")
    out = HERE / "out" / "label_precision.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "teacher": args.teacher,
                "augmented_rows": len(aug),
                "test_rows": len(test),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                f"{torch.get_num_threads()} threads",
                "native_bf16": cpu_has_native_bf16(),
                "speedup": speedup,
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
