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
import math
import sys
import time
from pathlib import Path

from datadistill.classical import ClassicalBaseline, ClassicalConfig
from datadistill.config import ConfigError
from datadistill.data.io import read_examples
from datadistill.data.labels import LabelMap
from datadistill.errors import DataError
from datadistill.pipeline import Pipeline, load_config

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="pipeline config whose label step has run")
    ap.add_argument("--c", default="0.25,0.5,1,2", help="SVM C values to try (comma-separated)")
    args = ap.parse_args()
    try:
        cfg = load_config(args.config, [])
        cs = list(dict.fromkeys(float(v) for v in args.c.split(",")))
        if not all(math.isfinite(c) and c > 0 for c in cs):
            raise ValueError("C must be positive and finite")
    except ConfigError as e:
        sys.exit(f"bench_linear_ceiling: error: {e}")
    except ValueError as e:
        sys.exit(f"bench_linear_ceiling: error: --c {args.c!r}: {e}; e.g. --c 0.25,0.5,1,2")
    lay = Pipeline(cfg).layout
    if not lay.part1.exists():
        sys.exit(
            f"bench_linear_ceiling: error: {lay.part1} is missing: run `datadistill run {args.config} --steps label` first"
        )
    try:
        run(cfg, lay, cs, HERE / "out" / f"linear_ceiling_{Path(args.config).stem}.json", args.config)
    except (DataError, ValueError) as e:  # ValueError: scikit-learn refusing the data (one class, say)
        sys.exit(f"bench_linear_ceiling: error: {e}")


def run(cfg, lay, cs: list[float], out: Path, config: str) -> None:
    def read(path) -> tuple[list[str], list[str] | None, list[str]]:
        ex = read_examples(path, label_column=cfg.data.label_column)
        pair = bool(ex) and ex[0].text_b is not None
        return [e.text_a for e in ex], [e.text_b or "" for e in ex] if pair else None, [e.label for e in ex]

    (a0, b0, y0), (a1, b1, y1) = read(lay.part0), read(lay.part1)
    if not y1:
        raise DataError(f"{lay.part1}: no teacher-labelled rows")
    a, b, y = a0 + a1, b0 + b1 if b0 is not None and b1 is not None else None, y0 + y1
    labels = LabelMap.from_labels(y)  # the ids the package's models use
    evals = {split: read(path) for split, path in (("dev", cfg.data.dev), ("test", cfg.data.test))}
    for split, (_, eb, gold) in evals.items():
        if not gold:
            raise DataError(f"data.{split}: no rows to score")
        if (eb is None) != (b is None):
            raise DataError(f"data.{split}: {'pairs' if eb is not None else 'single texts'}, unlike part.0 + part.1")
    rows = []
    for c in cs:
        t0 = time.perf_counter()
        model = ClassicalBaseline(ClassicalConfig(C=c)).fit(a, [labels.id(v) for v in y], b)
        row = {"C": c, "seconds": time.perf_counter() - t0}
        for split, (ea, eb, gold) in evals.items():
            pred = model.predict_ids(ea, eb)
            row[split] = 100 * sum(labels.labels[p] == g for p, g in zip(pred, gold)) / len(gold)
        rows.append(row)
        print(f"C {c:<5} dev {row['dev']:.2f} test {row['test']:.2f} ({row['seconds']:.0f}s)", flush=True)
        out.parent.mkdir(exist_ok=True)  # after every C: a study stopped later keeps what it measured
        out.write_text(json.dumps({"config": config, "texts": len(a), "rows": rows}, indent=1))
    print(f"{len(a):,} texts; wrote {out}")


if __name__ == "__main__":
    main()
