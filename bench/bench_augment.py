"""Augmentation speed on ChnSentiCorp train: tagging time and generation rate, separately.

    python bench/bench_augment.py [--data ../shared/data/chnsenticorp/train.tsv] [--workers 1]

Prints a table and writes bench/out/augment.json. Target: >= 5,000 generated examples/s after tagging.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

from datadistill import augment

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/chnsenticorp/train.tsv"))
    ap.add_argument("--n-iter", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=str(HERE / "out" / "augment.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            s = augment(args.data, Path(tmp) / "aug.tsv", n_iter=args.n_iter, seed=1, workers=workers)
            rows.append(
                dict(
                    workers=workers,
                    sources=s.sources,
                    written=s.written,
                    duplicates=s.dup_source + s.dup_output,
                    tag_s=round(s.tag_seconds, 2),
                    tag_texts_per_s=round(s.sources / s.tag_seconds),
                    gen_s=round(s.gen_seconds, 2),
                    gen_examples_per_s=round(s.written / s.gen_seconds),
                    strategies=dict(s.strategies),
                )
            )
    print(
        f"{'workers':>7} {'sources':>8} {'written':>8} {'dups':>5} {'tag s':>6} {'tag/s':>6} {'gen s':>6} {'gen ex/s':>9}"
    )
    for r in rows:
        print(
            f"{r['workers']:>7} {r['sources']:>8} {r['written']:>8} {r['duplicates']:>5} {r['tag_s']:>6} "
            f"{r['tag_texts_per_s']:>6} {r['gen_s']:>6} {r['gen_examples_per_s']:>9,}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            dict(machine=platform.processor() or platform.machine(), data=args.data, n_iter=args.n_iter, rows=rows),
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
