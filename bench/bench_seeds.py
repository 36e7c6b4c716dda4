"""Seed study: every student of a pipeline (or one), baseline and distilled, trained with several seeds.

ChnSentiCorp's dev and test sets hold 1,200 reviews each: one review is 0.08 points, and a student's
accuracy moves by a few tenths from seed to seed. This trains the baseline (part.0 only) and the
distilled student (part.0 + part.1) of a finished pipeline run once per seed and prints dev/test
accuracy per seed with mean and standard deviation, so a distillation gain can be told from noise;
also test macro-F1 (what counts for more than two classes) and, for a two-class task, the test
pair-order ratio of the positive class (what counts for a matching task), as the report counts them.

    python bench/bench_seeds.py examples/pipeline_quick.json                 # every student, seeds 1,2,3
    python bench/bench_seeds.py examples/pipeline_cpu_case2.json bow --seeds 1,2,3
    python bench/bench_seeds.py examples/pipeline_cpu_case2.json bow --set distill.loss=mse --tag mse

The run's label step must be done (part.0 and part.1 exist). `--set` overrides the run config as
`datadistill run` does; `--tag` names the variant in the output. Models go to
WORK/seeds/<student>_<tag>_<kind>_s<seed>/; the table to bench/out/seeds_<config>_<student>_<tag>.json,
written after every run (a study stopped early keeps what it finished), which keeps the rows of an
earlier run of the same variant (same overrides) for other kinds or seeds. With `--reuse`, a seed whose
folder holds a finished model made with the same settings from files of the same content (part.0, part.1,
dev; recorded beside the folder) is evaluated rather than trained again. `seconds`
is the training loop's time, as saved in the model's metrics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from datadistill.config import ConfigError
from datadistill.errors import DataError, ModelFolderError
from datadistill.evaluate import finite
from datadistill.pipeline import Pipeline, load_config
from datadistill.student import DataConfig, StudentRunConfig, evaluate_folder, train_student

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="pipeline config whose label step has run")
    ap.add_argument("student", nargs="?", help="a name under the config's students (default: every student)")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    ap.add_argument("--tag", default="default")
    ap.add_argument("--kinds", default="base,distilled", help="base, distilled or both")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate a seed whose model folder holds a finished model made with the same settings "
        "from files of the same content instead of training it again",
    )
    args = ap.parse_args()
    try:
        seeds, kinds = _seeds(args.seeds), _kinds(args.kinds)
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", args.tag):
            raise ConfigError(f"--tag {args.tag!r}: letters, digits, '_', '-' and '.' only (it names files)")
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        sys.exit(f"bench_seeds: error: {e}")
    lay = Pipeline(cfg).layout
    names = [args.student] if args.student else list(cfg.students)
    if args.student and args.student not in cfg.students:
        sys.exit(f"bench_seeds: error: {args.student}: not a student of {args.config} ({', '.join(cfg.students)})")
    if "distilled" in kinds and not lay.part1.exists():
        sys.exit(f"bench_seeds: error: {lay.part1} is missing: run `datadistill run {args.config} --steps label` first")
    who = args.student or "all"
    table = HERE / "out" / f"seeds_{Path(args.config).stem}_{who}_{args.tag}.json"
    rows, merged = [], []
    try:
        _table(table)  # a damaged table is found before any training, not after it
        for name in names:
            base_train, distill_train = cfg.train_configs(name)
            settings = {"base": ([], base_train), "distilled": ([str(lay.part1)], distill_train)}
            for kind in kinds:
                part1, train_cfg = settings[kind]
                for seed in seeds:
                    data = DataConfig(str(lay.part0), cfg.data.dev, cfg.data.test, part1, cfg.data.label_column)
                    out = Path(cfg.work) / "seeds" / f"{name}_{args.tag}_{kind}_s{seed}"
                    run = StudentRunConfig(data, cfg.students[name].student(), replace(train_cfg, seed=seed), str(out))
                    measured, ratio = _one_seed(run, cfg, args.reuse)
                    rows.append({"student": name, "kind": kind, "seed": seed} | measured)
                    _print_row(rows[-1], args.tag, ratio)
                    merged = _save(table, args, names, rows)  # a study stopped later keeps the runs it finished
    except (ConfigError, DataError, ModelFolderError) as e:
        sys.exit(f"bench_seeds: error: {e}")
    _print_summary(merged, names, args.tag)  # this study's runs with the earlier ones it kept, as written
    print(f"wrote {table}")


def _one_seed(run: StudentRunConfig, cfg, reuse: bool) -> tuple[dict, float | None]:
    """Train (or, with --reuse, take the finished) model of `run` and measure it: one table row's numbers,
    and the pair-order ratio as measured (inf when nothing is reversed; the row holds None then)."""
    m = _finished(run) if reuse else None
    if m is None:
        inputs = _inputs(run)  # read before training: what the model is made from
        m = train_student(run, progress=False)
        record = _inputs_record(run)
        tmp = record.with_suffix(f".{os.getpid()}.tmp")  # whole or not at all: a kill leaves no half record
        tmp.write_text(json.dumps(inputs), encoding="utf-8")
        tmp.replace(record)
    t = evaluate_folder(run.output, cfg.data.test, cfg.data.label_column, cfg.data.positive_label)
    ratio = t["ranking"]["pair_order"] if "ranking" in t else None
    return {
        "dev": m["dev"]["accuracy"] * 100,
        "test": t["accuracy"] * 100,
        "test_macro_f1": t["macro_f1"] * 100,
        "test_pair_order": ratio if ratio is None or ratio != float("inf") else None,
        "seconds": m["train_seconds"],  # the training loop's, saved with the model
    }, ratio


def _print_row(r: dict, tag: str, ratio: float | None) -> None:
    print(
        f"{r['student']} {tag:<12} {r['kind']:<9} seed {r['seed']}: dev {r['dev']:.2f} "
        f"test {r['test']:.2f} macro-F1 {r['test_macro_f1']:.2f}"
        + (f" pair-order {ratio:.2f}" if ratio is not None else "")
        + f" ({r['seconds']:.0f}s)",
        flush=True,
    )


def _print_summary(rows: list[dict], names: list[str], tag: str) -> None:
    kinds_run = [k for k in ("base", "distilled") if any(r["kind"] == k for r in rows)]
    keys = _keys(rows)
    print(f"\n{'student':<8} {'variant':<14} {'kind':<9} {'n':>2} " + " ".join(f"{k + ' mean ± sd':>24}" for k in keys))
    summary = _summary(rows, names)
    for name in names:
        for kind in kinds_run:
            s = summary.get(f"{name}/{kind}")
            if s is None:
                continue
            print(
                f"{name:<8} {tag:<14} {kind:<9} {s['n']:>2} "
                + " ".join(f"{s[k + '_mean']:16.2f} ± {s[k + '_sd']:5.2f}" for k in keys)
            )


def _seeds(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3]: distinct non-negative integers, in order."""
    parts = text.split(",")
    if not all(p.strip().isascii() and p.strip().isdigit() and int(p) < 2**32 for p in parts):
        raise ConfigError(f"--seeds {text!r}: expected non-negative integers separated by commas, e.g. --seeds 1,2,3")
    return list(dict.fromkeys(int(p) for p in parts))


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",")]
    if any(k not in ("base", "distilled") for k in kinds):
        raise ConfigError(f"--kinds {text!r}: expected base, distilled or base,distilled")
    return list(dict.fromkeys(kinds))


def _finished(run: StudentRunConfig) -> dict | None:
    """The saved metrics of `run.output` when it holds a finished model trained with exactly `run`'s settings
    (no checkpoint left, the same config in metrics.json), else None: the seed is trained (again). Checked
    under the folder's lock, so a folder another process is training is refused, not read half-written."""
    from datadistill.config import to_dict
    from datadistill.lock import exclusive
    from datadistill.modelio import REQUIRED
    from datadistill.student import CHECKPOINT

    out = Path(run.output)
    if not (out / "metrics.json").is_file():
        return None
    with exclusive(out, "student training"):
        try:
            m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = isinstance(m, dict) and isinstance(m.get("dev"), dict) and isinstance(m["dev"].get("accuracy"), float)
        ok = ok and isinstance(m.get("train_seconds"), (int, float))
        if not ok or (out / CHECKPOINT).exists() or not all((out / f).is_file() for f in REQUIRED):
            return None
        if m.get("config") != json.loads(json.dumps(to_dict(run))):
            print(f"{out}: saved with other settings; training it again", flush=True)
            return None
        record = _inputs_record(run)
        if not record.is_file():  # a folder from before the record: its settings are all there is to compare
            print(f"{out}: no record of its inputs' content; reused on its settings alone", flush=True)
            return m
        try:
            same = json.loads(record.read_text(encoding="utf-8")) == _inputs(run)
        except (OSError, ValueError):
            print(f"{record}: unreadable; training {out} again", flush=True)
            return None
        if not same:
            print(f"{out}: trained on files whose content has changed since; training it again", flush=True)
            return None
        return m


def _inputs_record(run: StudentRunConfig) -> Path:
    """Beside the seed's folder (not in it: a model folder holds the model), the content of its inputs."""
    out = Path(run.output)
    return out.parent / f".{out.name}.inputs.json"


def _inputs(run: StudentRunConfig) -> dict:
    """Content digests of the files a seed is trained and chosen on: the same paths may hold other rows
    (part.1 labelled again), and --reuse must then train again."""
    from datadistill.data.cache import content_digest

    d = run.data
    return {
        "train": content_digest(d.train),
        "teacher_labelled": [content_digest(p) for p in d.teacher_labelled],
        "dev": content_digest(d.dev),
    }


def _keys(rows: list[dict]) -> list[str]:
    return ["dev", "test", "test_macro_f1"] + (
        ["test_pair_order"] if any(r.get("test_pair_order") is not None for r in rows) else []
    )


def _summary(rows: list[dict], names: list[str]) -> dict:
    """`student/kind` -> n and mean / sd of every measure over the seeds."""
    summary = {}
    for name in names:
        for kind in ("base", "distilled"):
            r = [x for x in rows if x["kind"] == kind and x.get("student") == name]  # the oldest tables name no student
            if not r:
                continue
            summary[f"{name}/{kind}"] = {"n": len(r)}
            for k in _keys(rows):
                vals = [x[k] for x in r if x.get(k) is not None]  # a ratio with nothing reversed is infinite
                mean, sd = (statistics.mean(vals), statistics.pstdev(vals)) if vals else (float("nan"), float("nan"))
                summary[f"{name}/{kind}"] |= {f"{k}_mean": mean, f"{k}_sd": sd}
    return summary


def _save(table: Path, args, names: list[str], rows: list[dict]) -> list[dict]:
    """Write the table atomically: the rows already in it for this variant (same overrides) of kinds and
    seeds not run here, then this study's; return them. Read and written under a lock, so two studies of
    one variant at once (other seeds, other kinds) both keep their rows."""
    import fcntl

    table.parent.mkdir(parents=True, exist_ok=True)
    with open(table.parent / f".{table.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = _table(table)
        earlier = before.get("rows", []) if before.get("overrides") == args.overrides else []
        done = {(r["student"], r["kind"], r["seed"]) for r in rows}
        rows = [r for r in earlier if (r.get("student"), r["kind"], r["seed"]) not in done] + rows
        names = list(dict.fromkeys(before.get("students", []) + names)) if earlier else names
        body = {"config": args.config, "students": names, "overrides": args.overrides, "rows": rows}
        tmp = table.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(finite(body | {"summary": _summary(rows, names)}), indent=1))
        tmp.replace(table)
    return rows


def _table(table: Path) -> dict:
    """An earlier table of this variant, checked: {} when there is none."""
    if not table.exists():
        return {}
    try:
        before = json.loads(table.read_text(encoding="utf-8"))
        rows = before["rows"]
        if not isinstance(before.get("students", []), list) or not all(
            {"kind", "seed", "dev", "test"} <= set(r)
            and isinstance(r["seed"], int)
            and all(isinstance(r[k], (int, float)) for k in ("dev", "test"))
            for r in rows
        ):
            raise ValueError("a row lacks kind, seed, dev or test, or holds a value of the wrong type")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{table}: not a bench_seeds table ({e}); move it away or choose another --tag") from None
    return before


if __name__ == "__main__":
    main()
