"""Is the teacher worth distilling? The teacher, the classical model and their ensemble on dev and test.

The label step decides on dev alone (the ensemble's weight, "auto"); the report measures on test only
after the whole run. This measures the three side by side without labelling anything, so a new teacher
recipe (more epochs, longer texts) can be judged against issue 18's target (the teacher at least one
point above the classical model) in minutes:

    python bench/bench_ensemble_teacher.py examples/pipeline_lcqmc.json --teacher-dir work/lcqmc_t4

The teacher folder defaults to the config's. The classical row is the report's (TF-IDF + linear SVM on
the gold labels); the ensemble blends the teacher with the calibrated classical model at the weight
`label.classical_weight` gives ("auto": chosen on dev, as the label step chooses it). Writes
bench/out/ensemble_teacher_<config>_<teacher folder>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from datadistill.classical import ClassicalBaseline
from datadistill.config import ConfigError
from datadistill.data.io import read_splits
from datadistill.ensemble import auto_weight, blend, check_probs, fit_member
from datadistill.errors import DataError
from datadistill.evaluate import classification_metrics, finite
from datadistill.pipeline import Pipeline, load_config, teacher_probs
from datadistill.teacher.base import TeacherError

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="pipeline config (its data and teacher sections)")
    ap.add_argument("--teacher-dir", help="a fine-tuned teacher folder (default: the config's)")
    ap.add_argument("--batch-size", type=int, help="texts per teacher call (default: label.batch_size)")
    args = ap.parse_args()
    if args.batch_size is not None and args.batch_size < 1:
        sys.exit(f"bench_ensemble_teacher: error: --batch-size {args.batch_size}: expected a positive integer")
    overrides = [f"teacher_dir={json.dumps(args.teacher_dir)}"] if args.teacher_dir else []
    try:
        cfg = load_config(args.config, overrides)
        p = Pipeline(cfg)
        if not (p.layout.teacher / "config.json").is_file() and p.trains_teacher():
            raise ConfigError(f"{p.layout.teacher}: no fine-tuned teacher there (run the teacher step first)")
        d = cfg.data
        train, dev, test, lm = read_splits(d.train, d.dev, d.test, label_column=d.label_column)
        batch_size = args.batch_size or cfg.label.batch_size  # the dev check's batches: the same padding
        teacher = p.load_teacher(batch_size, cfg.label.precision)
        where = "_".join(p.layout.teacher.parts[-2:])  # e.g. lcqmc_t4_teacher: one file per teacher folder
        out = HERE / "out" / f"ensemble_teacher_{Path(args.config).stem}_{where}.json"
        run(
            cfg,
            teacher,
            (train, dev, test, lm),
            out,
            {"config": args.config, "teacher_dir": str(p.layout.teacher)},
            batch_size,
        )
    except (ConfigError, DataError, TeacherError, ValueError, OSError) as e:  # OSError: a folder without weights
        sys.exit(f"bench_ensemble_teacher: error: {e}")


def run(cfg, teacher, splits: tuple, out: Path, meta: dict, batch_size: int) -> None:
    """Score dev and test with the teacher, fit the classical models on train, print and write the table."""
    train, dev, test, lm = splits
    pair = train[0].text_b is not None
    sides = lambda rows: ([e.text_a for e in rows], [e.text_b or "" for e in rows] if pair else None)  # noqa: E731
    gold = {"dev": np.array([lm.id(e.label) for e in dev]), "test": np.array([lm.id(e.label) for e in test])}
    texts = {"dev": sides(dev), "test": sides(test)}

    train_a, train_b = sides(train)  # the classical models first: seconds, where the teacher takes minutes
    clf = ClassicalBaseline().fit(train_a, [lm.id(e.label) for e in train], train_b)
    member = fit_member(train, lm)
    probs_T, seconds = {}, {}
    for split, (a, b) in texts.items():
        t0 = time.perf_counter()
        probs_T[split] = teacher_probs(teacher, a, b, batch_size)  # as the label step's dev check asks
        seconds[split] = time.perf_counter() - t0
        if probs_T[split] is None:
            raise DataError("this teacher gives labels only: there is nothing to blend")
        check_probs(probs_T[split], f"the teacher's probabilities on {split}")
        print(f"teacher scored {split}: {len(a):,} texts in {seconds[split]:.0f}s", flush=True)

    probs_C = {s: member.probs(*texts[s]) for s in texts}
    setting = cfg.label.classical_weight
    if setting == "auto":
        weight, _, _ = auto_weight(probs_T["dev"], probs_C["dev"], gold["dev"], lm.labels)
    else:
        weight = float(setting)

    def measure(pred: dict) -> dict:
        out = {}
        for s in ("dev", "test"):
            m = classification_metrics(gold[s], pred[s], lm.labels)
            out |= {f"{s}_accuracy": 100 * m["accuracy"], f"{s}_macro_f1": 100 * m["macro_f1"]}
        return out

    labeller = f"ensemble (w {weight:g})" if weight else "teacher"  # what the label step labels part.1 with
    rows = {
        "teacher": measure({s: probs_T[s].argmax(-1) for s in texts}),
        "classical": measure({s: np.asarray(clf.predict_ids(*texts[s])) for s in texts}),
    }
    if weight:
        rows[labeller] = measure({s: blend(probs_T[s], probs_C[s], weight).argmax(-1) for s in texts})
    print(f"\n{'model':<18} {'dev acc':>8} {'dev F1':>8} {'test acc':>9} {'test F1':>8}")
    for name, r in rows.items():
        print(
            f"{name:<18} {r['dev_accuracy']:8.2f} {r['dev_macro_f1']:8.2f} {r['test_accuracy']:9.2f} "
            f"{r['test_macro_f1']:8.2f}"
        )
    keys = ["test_accuracy"] + (["test_macro_f1"] if len(lm) > 2 else [])  # macro-F1 where minorities suffer
    margins = {k: rows[labeller][k] - rows["classical"][k] for k in keys}
    said = ", ".join(f"{k.removeprefix('test_')} {v:+.2f}" for k, v in margins.items())
    print(f"{labeller}, which labels part.1, against the classical model on test: {said} (target: +1.00)")
    out.parent.mkdir(exist_ok=True)
    body = meta | {"weight": weight, "labeller": labeller, "margins": margins, "rows": rows, "seconds": seconds}
    out.write_text(json.dumps(finite(body), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
