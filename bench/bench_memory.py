"""Peak memory of labelling and of student training as the data grows ten times (200k and 2M rows).

    python bench/bench_memory.py                 # 200k and 2M rows
    python bench/bench_memory.py --rows 20000,200000

The texts are augmented ChnSentiCorp reviews (the built-in 500 training reviews, 10 augmentations
each) repeated, each with its row number appended so that every text is new to the score cache
(its worst case). Each measurement runs in a fresh child process and reads its peak resident set
size (ru_maxrss):

- labelling: `label_file` with the score cache on, and an instant stand-in teacher (scores from a
  hash of the text), so what is measured is the machinery's memory (reading, cache, writing), not
  a network's (which is the same at any size);
- student training: `datadistill student train`, BOW, part.0 = the 500 reviews, part.1 = the
  labelled file just written, stopped after 20 steps (memory peaks once the data is loaded).

The table and JSON go to bench/out/memory.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

LABEL = r"""
import hashlib, sys
import numpy as np
from datadistill.label import label_file
from datadistill.teacher.base import Teacher, TeacherScores

class Instant(Teacher):
    name = "instant"
    label_names = ["0", "1"]
    def score(self, a, b=None):
        p = np.array([hashlib.blake2b(t.encode(), digest_size=1).digest()[0] / 255 for t in a])
        probs = np.stack([1 - p, p], 1)
        return TeacherScores(labels=[str(int(x > 0.5)) for x in p], probs=probs, logits=np.log(probs + 1e-6))

label_file(Instant(), sys.argv[1], sys.argv[2], batch_size=256, chunk_size=4096, progress=False, cache=sys.argv[3])
"""


PEAK = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
PEAK += "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"


def _child_peak(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of `cmd`, run by a fresh wrapper process so that only its peak counts."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", PEAK, *cmd], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return int(r.stdout.split()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="200000,2000000")
    ap.add_argument("--work", default="work/bench_memory")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    from datadistill.augment import AugmentConfig, augment_file
    from datadistill.data.io import ExampleReader

    aug = work / "aug.tsv"
    if not aug.exists():
        augment_file("chnsenticorp:train_500", aug, AugmentConfig(n_iter=10, tokenizer="char"), progress=False)
    texts = [e.text_a for e in ExampleReader(aug, require_label=False)]
    student = {
        "data": {"train": "chnsenticorp:train_500", "dev": "chnsenticorp:dev", "teacher_labelled": []},
        "student": {"arch": "bow", "features": {"tokenizer": "char", "max_len": 512, "ngrams": [2, 3]}},
        "train": {"epochs": 1, "batch_size": 64, "loss": "kl", "max_steps": 20, "checkpoint": False},
        "output": "",
    }
    results = []
    for n in [int(x) for x in args.rows.split(",")]:
        src, part1, cache = work / f"texts.{n}.txt", work / f"part.1.{n}", work / f"scores.{n}.tsv"
        with open(src, "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(f"{texts[i % len(texts)]} {i}\n")
        for p in (part1, cache):
            p.unlink(missing_ok=True)
        label_mb, label_s = _child_peak([sys.executable, "-c", LABEL, str(src), str(part1), str(cache)])
        cfg = work / f"bow.{n}.json"
        student["data"]["teacher_labelled"] = [str(part1)]
        student["output"] = str(work / f"bow.{n}")
        cfg.write_text(json.dumps(student))
        train_mb, train_s = _child_peak(
            [sys.executable, "-m", "datadistill", "student", "train", "--config", str(cfg), "-q"]
        )
        results.append(
            {
                "rows": n,
                "part1_mb": part1.stat().st_size / 2**20,
                "label_peak_mb": label_mb,
                "label_s": label_s,
                "train_peak_mb": train_mb,
                "train_s": train_s,
            }
        )
        print(
            f"{n:,} rows: labelling {label_mb:,.0f} MiB ({label_s:.0f}s), training {train_mb:,.0f} MiB ({train_s:.0f}s)"
        )
    print("\n| part.1 rows | file MiB | labelling peak MiB | labelling s | student training peak MiB | training s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['part1_mb']:,.0f} | {r['label_peak_mb']:,.0f} | {r['label_s']:.0f} | "
            f"{r['train_peak_mb']:,.0f} | {r['train_s']:.0f} |"
        )
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "memory.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
