"""Fine-tune the bundled teacher (multilingual-e5-small) on ChnSentiCorp; dev/test accuracy and labels/s.

    python bench/bench_teacher.py --setting cpu    # 1 epoch at 96 tokens, about 25 minutes on 2 CPU cores
    python bench/bench_teacher.py --setting cpu256 # 2 epochs at 256 tokens, about 45 minutes on 2 CPU cores
    python bench/bench_teacher.py --setting gpu    # the full recipe (one GPU, about a minute)

Prints a table and writes bench/out/teacher_<setting>.json; the fine-tuned teacher stays in --work.
labels/s is `HFTeacher.score` on augmented texts (as `datadistill label` sees them), batch 64.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent

from datadistill.data import ExampleReader, read_examples  # noqa: E402
from datadistill.data.io import read_splits  # noqa: E402
from datadistill.log import setup_logging  # noqa: E402
from datadistill.teacher.hf import HFTeacher, TeacherTrainConfig, finetune  # noqa: E402

SETTINGS = {
    # 1 epoch at max_len 96: ~4 samples/s for training and ~20 texts/s for scoring on 2 cores
    "cpu": dict(epochs=1, max_len=96, batch_size=32, lr=1e-4, warmup=0.1, patience=1),
    # the full-length teacher on CPU: all 256 tokens, 2 epochs; length-grouped batches keep it near 20 min/epoch
    "cpu256": dict(epochs=2, max_len=256, batch_size=32, lr=6e-5, warmup=0.1, patience=3, eval_every=150),
    # the recipe of the issue: 4 epochs, max_len 256, batch 32, lr 5e-5, bf16 autocast
    "gpu": dict(epochs=4, max_len=256, batch_size=32, lr=5e-5, warmup=0.1, patience=2, eval_every=150),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="cpu")
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/chnsenticorp"))
    ap.add_argument("--aug", help="augmented TSV to time labelling on (default: made from train with n_iter 1)")
    ap.add_argument("--label-rows", type=int, default=1000)
    ap.add_argument("--work", default="work/bench/teacher")
    args = ap.parse_args()
    data = Path(args.data)
    setup_logging()
    train, dev, test, lm = read_splits(data / "train.tsv", data / "dev.tsv", data / "test.tsv")
    out = Path(args.work) / args.setting
    cfg = TeacherTrainConfig(model="bundled:multilingual-e5-small", **SETTINGS[args.setting])
    t0 = time.perf_counter()
    m = finetune(cfg, train, dev, out, lm, progress=sys.stderr.isatty())
    train_s = time.perf_counter() - t0
    teacher = HFTeacher(out)

    def acc(exs):
        return float(np.mean([p == e.label for p, e in zip(teacher.score([e.text_a for e in exs]).labels, exs)]))

    dev_acc, test_acc = acc(dev), acc(test)
    if args.aug:
        aug = [e.text_a for e in ExampleReader(args.aug, require_label=False)][: args.label_rows]
    else:
        from datadistill import augment

        tmp = Path(args.work) / "aug1.tsv"
        augment(data / "train.tsv", tmp, n_iter=1, seed=1)
        aug = [e.text_a for e in read_examples(tmp, require_label=False)][: args.label_rows]
    aug = [t.replace("[UNK]", teacher.unk_token) for t in aug]
    t0 = time.perf_counter()
    teacher.score(aug)
    label_rate = len(aug) / (time.perf_counter() - t0)
    row = dict(
        setting=args.setting,
        device=str(teacher.device),
        dev_accuracy=dev_acc,
        test_accuracy=test_acc,
        train_seconds=train_s,
        steps=m["steps"],
        labels_per_s=label_rate,
        config=SETTINGS[args.setting],
        machine=f"{platform.machine()}, {os.cpu_count()} cores"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
    )
    print(f"{'setting':<8} {'device':<6} {'dev acc':>8} {'test acc':>8} {'train s':>8} {'steps':>6} {'labels/s':>9}")
    print(
        f"{row['setting']:<8} {row['device']:<6} {dev_acc * 100:8.2f} {test_acc * 100:8.2f} {train_s:8.0f} "
        f"{row['steps']:6d} {label_rate:9.1f}"
    )
    dst = HERE / "out" / f"teacher_{args.setting}.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(row, indent=1))
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
