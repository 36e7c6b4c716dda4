"""How closely trained students follow their teacher on the texts they were distilled on (part.1), next to
their accuracy on dev and test.

A student that agrees with the teacher on nearly every part.1 text but stays below it on real reviews is
not short of capacity: the texts it learned from do not reach what the test asks. One that disagrees
often on part.1 is (or is under-trained).

    python bench/bench_part1_fit.py work/cs_all_nb.json work/cs_all_nb/seeds/bow_nonb_distilled_s1 ...

Per folder: agreement of the student's label with part.1's (the teacher's), the mean absolute difference of
their probabilities (half the L1 distance, the total variation), and dev / test accuracy. Writes
bench/out/part1_fit_<config>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from datadistill.config import ConfigError
from datadistill.data.io import read_examples
from datadistill.errors import DataError, ModelFolderError
from datadistill.pipeline import Pipeline, load_config
from datadistill.predict import Predictor, check_pair_columns

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="pipeline config whose label step has run")
    ap.add_argument("folders", nargs="+", help="student model folders trained on that config's part.1")
    args = ap.parse_args()
    try:
        cfg = load_config(args.config, [])
        part1 = Pipeline(cfg).layout.part1
        if not part1.exists():
            raise DataError(f"{part1} is missing: run `datadistill run {args.config} --steps label` first")
        part1_rows = read_examples(part1)  # once for every folder
        rows = [measure(Path(f), part1, part1_rows, cfg.data) for f in args.folders]
    except (ConfigError, DataError, ModelFolderError) as e:
        sys.exit(f"bench_part1_fit: error: {e}")
    print(f"{'folder':<44} {'part.1 agree':>12} {'part.1 TV':>9} {'dev':>6} {'test':>6}")
    for r in rows:
        print(f"{r['folder']:<44} {r['part1_agreement']:12.2f} {r['part1_tv']:9.4f} {r['dev']:6.2f} {r['test']:6.2f}")
    out = HERE / "out" / f"part1_fit_{Path(args.config).stem}.json"
    out.write_text(json.dumps({"config": args.config, "part1": str(part1), "rows": rows}, indent=1))
    print(f"wrote {out}")


def measure(folder: Path, part1: Path, ex: list, data) -> dict:
    """One folder's row: agreement (%) and total variation with the teacher on part.1 (`ex`, read from
    `part1`), dev and test accuracy (%)."""
    pred = Predictor(folder)
    if not ex:
        raise DataError(f"{part1}: no rows")
    check_pair_columns(pred, part1, ex[0].text_b is not None, str(folder))
    n = len(pred.labels)
    if any(e.probs is None or len(e.probs) != n or e.label not in pred.labels for e in ex):
        raise DataError(f"{part1}: every row needs a label of {folder} and {n} probabilities (a probs column)")
    probs_T = np.array([e.probs for e in ex], dtype=np.float64)  # [N, C]
    teacher = np.array([pred.labels.index(e.label) for e in ex])
    if (probs_T.argmax(-1) != teacher).any():  # part.1's label is its top probability, in the label map's order
        raise DataError(f"{part1}: its probabilities are not in the label order of {folder} ({', '.join(pred.labels)})")
    b = [e.text_b for e in ex] if ex[0].text_b is not None else None
    probs_S = pred.predict_proba([e.text_a for e in ex], b)  # [N, C]
    row = {
        "folder": str(folder),
        "part1_rows": len(ex),
        "part1_agreement": float(np.mean(probs_S.argmax(-1) == teacher) * 100),
        "part1_tv": float(np.abs(probs_S - probs_T).sum(-1).mean() / 2),
    }
    for split in ("dev", "test"):
        gold = read_examples(getattr(data, split), label_column=data.label_column)
        check_pair_columns(pred, getattr(data, split), bool(gold) and gold[0].text_b is not None, str(folder))
        b = [e.text_b for e in gold] if gold and gold[0].text_b is not None else None
        got = pred.predict([e.text_a for e in gold], b)
        row[split] = float(np.mean([g == e.label for g, e in zip(got, gold)]) * 100)
    return row


if __name__ == "__main__":
    main()
