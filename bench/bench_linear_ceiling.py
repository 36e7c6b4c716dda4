"""How far the classical model gets when it sees what the students see: the ceiling of a bag of n-grams.

The report's classical model (TF-IDF of character 1–3-grams, linear SVM; classical.py) is trained on the
gold labels alone. Here it is trained on part.0 + part.1 with part.1's hard labels, for several C, and
scored on dev and test. If the linear BOW student (soft labels, solved) is already at or above this, the
gap between the students and their teacher is not a matter of the bag's features.

    python bench/bench_linear_ceiling.py work/cs_all_nb.json

Writes bench/out/linear_ceiling_<config>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from datadistill.classical import ClassicalBaseline, ClassicalConfig
from datadistill.config import ConfigError
from datadistill.data.io import read_examples
from datadistill.pipeline import Pipeline, load_config

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="pipeline config whose label step has run")
    ap.add_argument("--c", default="0.25,0.5,1,2", help="SVM C values to try (comma-separated)")
    args = ap.parse_args()
    try:
        cfg = load_config(args.config, [])
        cs = [float(v) for v in args.c.split(",")]
    except (ConfigError, ValueError) as e:
        sys.exit(f"bench_linear_ceiling: error: {e}")
    lay = Pipeline(cfg).layout
    if not lay.part1.exists():
        sys.exit(f"{lay.part1} is missing: run `datadistill run {args.config} --steps label` first")

    def read(path) -> tuple[list[str], list[str]]:
        ex = read_examples(path, label_column=cfg.data.label_column)
        return [e.text_a for e in ex], [e.label for e in ex]

    (x0, y0), (x1, y1) = read(lay.part0), read(lay.part1)
    x, y = x0 + x1, y0 + y1
    labels = sorted(set(y))
    ids = {lab: i for i, lab in enumerate(labels)}
    rows = []
    for c in cs:
        t0 = time.perf_counter()
        model = ClassicalBaseline(ClassicalConfig(C=c)).fit(x, [ids[v] for v in y])
        row = {"C": c, "seconds": time.perf_counter() - t0}
        for split, path in (("dev", cfg.data.dev), ("test", cfg.data.test)):
            texts, gold = read(path)
            pred = model.predict_ids(texts)
            row[split] = 100 * sum(labels[p] == g for p, g in zip(pred, gold)) / len(gold)
        rows.append(row)
        print(f"C {c:<5} dev {row['dev']:.2f} test {row['test']:.2f} ({row['seconds']:.0f}s)", flush=True)
    out = HERE / "out" / f"linear_ceiling_{Path(args.config).stem}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"config": args.config, "texts": len(x), "rows": rows}, indent=1))
    print(f"{len(x):,} texts; wrote {out}")


if __name__ == "__main__":
    main()
