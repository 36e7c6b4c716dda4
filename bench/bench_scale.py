"""Labelling with 1 and with N processes (torchrun, gloo), each pinned to one thread: texts/s and ratio.

    python bench/bench_scale.py --teacher work/quick/teacher --rows 2000        # 1 vs 2 processes
    python bench/bench_scale.py --teacher work/quick/teacher --rows 2000 --procs 1,2
    python bench/bench_scale.py --student examples/cls_bow_ch.json      # DDP student training, 1 vs 2

The texts are the first ROWS of the built-in unlabelled ChnSentiCorp reviews (nothing to download).
Each setting runs the same `datadistill label` command (no score cache, so every text is scored),
under `torchrun --standalone --nproc-per-node N` for N > 1, with OMP_NUM_THREADS=1 and a time that
includes start-up and rank 0's merge. The outputs must be byte-identical; the table and JSON go to
bench/out/scale.json.

With --student CONFIG it trains that student config with 1 process and with N DDP processes (the
same global batch, `train.batch_size`, split over the ranks; one thread each) and compares dev and
test accuracy and time (bench/out/scale_student.json).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", help="a teacher folder (teacher finetune or a pipeline's WORK/teacher)")
    ap.add_argument("--student", help="a student config to train with 1 and N processes instead")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--work", default="work/bench_scale")
    args = ap.parse_args()
    if args.student:
        return students(args)
    if not args.teacher:
        ap.error("give --teacher (labelling) or --student (training)")

    from datadistill.datasets import resolve

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    texts = work / "texts.txt"
    with open(resolve("chnsenticorp:unlabelled"), encoding="utf-8") as f:
        next(f)  # header
        lines = [line.rstrip("\n").split("\t")[-1] for _, line in zip(range(args.rows), f)]
    texts.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows, outputs = [], {}
    for n in [int(x) for x in args.procs.split(",")]:
        out = work / f"part.1.procs{n}"
        out.unlink(missing_ok=True)
        cmd = ["-m", "datadistill", "label", "--model", args.teacher, "--input", str(texts), "--output", str(out)]
        cmd += ["--precision", args.precision, "--batch-size", "64", "--chunk-size", "256", "-q"]
        launch = [sys.executable] if n == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  f"--master-port={_port()}", f"--nproc-per-node={n}"]  # fmt: skip
        t0 = time.perf_counter()
        r = subprocess.run(launch + cmd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if r.returncode:
            sys.exit(f"{n} processes failed:\n{r.stdout}\n{r.stderr}")
        outputs[n] = out.read_bytes()
        rows.append({"processes": n, "threads_each": 1, "texts": len(lines), "seconds": seconds,
                     "texts_per_s": len(lines) / seconds})  # fmt: skip
    base = rows[0]["texts_per_s"]
    same = len(set(outputs.values())) == 1
    print("| processes × 1 thread | texts | seconds | texts/s | ratio | output identical to 1 process |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        r["ratio"] = r["texts_per_s"] / base
        print(
            f"| {r['processes']} | {r['texts']:,} | {r['seconds']:.1f} | {r['texts_per_s']:.1f} | "
            f"{r['ratio']:.2f}x | {'yes' if same else 'NO'} |"
        )
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "scale.json").write_text(
        json.dumps({"teacher": args.teacher, "precision": args.precision, "identical": same, "rows": rows}, indent=1)
    )
    if not same:
        sys.exit("outputs differ")


def students(args) -> None:
    work = Path(args.work)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows = []
    for n in [int(x) for x in args.procs.split(",")]:
        out = work / f"student.procs{n}"
        cmd = ["-m", "datadistill", "student", "train", "--config", args.student, "--set", f"output={out}", "-q"]
        launch = [sys.executable] if n == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  f"--master-port={_port()}", f"--nproc-per-node={n}"]  # fmt: skip
        t0 = time.perf_counter()
        r = subprocess.run(launch + cmd, env=env, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"{n} processes failed:\n{r.stdout}\n{r.stderr}")
        m = json.loads((out / "metrics.json").read_text())
        rows.append({"processes": n, "seconds": time.perf_counter() - t0, "steps": m["steps"],
                     "dev": m["dev"]["accuracy"], "test": m.get("test", {}).get("accuracy")})  # fmt: skip
    print("| processes × 1 thread | steps | dev acc | test acc | seconds |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        test = f"{r['test'] * 100:.2f}" if r["test"] is not None else "–"
        print(f"| {r['processes']} | {r['steps']} | {r['dev'] * 100:.2f} | {test} | {r['seconds']:.0f} |")
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "scale_student.json").write_text(json.dumps({"config": args.student, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
