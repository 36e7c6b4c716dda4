"""`datadistill split`: a fixed, reproducible train/dev/test split of one labelled file.

Rows keep their bytes (the header too; line ends become LF). `stratify` keeps every class's share
in every part (within one row): rows are shuffled within their class and each part takes from every
class its share of what is left. `group` keeps candidates of one query (the same `text_a`, or a
`qid`) in one part, so a model never meets a test query in training; parts then end at a group's
end. With `train`, the rows left over go to `unlabelled.tsv` with their text columns only: an honest
unlabelled pool. Files of an earlier split in the same folder are removed first.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..lock import exclusive
from .cache import file_digest
from .io import ExampleReader, ExampleWriter, atomic_write

GROUP_COLUMNS = ("text_a", "text_b", "qid")
PART_FILES = ("train.tsv", "dev.tsv", "test.tsv", "unlabelled.tsv", "split.json")


@dataclass
class SplitPlan:
    dev: int
    test: int
    train: int | None = None  # None: all the rows not in dev or test
    stratify: str | None = None  # a label column
    group: str | None = None  # text_a, text_b or qid
    seed: int = 1


def _stratified(keys: list[str], sizes: list[int], rng: random.Random) -> list[list[int]]:
    """Parts of the given sizes (then the rest), each class drawn in proportion to what is left of it:
    per part, every class gets the floor of its exact share, and the rows still missing go to the
    classes with the largest remainders, so a part is within one row of its share of every class."""
    left: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        left.setdefault(k, []).append(i)
    for k in sorted(left):
        rng.shuffle(left[k])
    parts = []
    for size in sizes:
        total = sum(len(v) for v in left.values())
        exact = {k: size * len(v) / total for k, v in left.items()}
        quota = {k: int(x) for k, x in exact.items()}
        for k in sorted(exact, key=lambda k: (quota[k] - exact[k], k))[: size - sum(quota.values())]:
            quota[k] += 1
        parts.append([i for k in sorted(left) for i in left[k][: quota[k]]])
        left = {k: v[quota[k] :] for k, v in left.items()}
    return parts + [[i for k in sorted(left) for i in left[k]]]


def _grouped_order(keys: list[str], rng: random.Random) -> list[int]:
    """Row indices with the groups in random order and each group's rows together."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    names = sorted(groups)
    rng.shuffle(names)
    return [i for g in names for i in groups[g]]


def _cut(order: list[int], keys: list[str] | None, sizes: list[int]) -> list[list[int]]:
    """Consecutive parts of `order` of the given sizes; with group keys a part ends only at a group's end."""
    parts, at = [], 0
    for size in sizes:
        end = min(at + size, len(order))
        while keys is not None and 0 < end < len(order) and keys[order[end]] == keys[order[end - 1]]:
            end += 1
        parts.append(order[at:end])
        at = end
    parts.append(order[at:])
    return parts


def split_file(path: str | Path, out_dir: str | Path, plan: SplitPlan, label_column: str = "label") -> dict:
    """Write OUT/train.tsv, dev.tsv, test.tsv (+ unlabelled.tsv when plan.train is set) and split.json."""
    if plan.stratify and plan.group:
        raise DataError("split: choose --stratify or --group, not both")
    if plan.group and plan.group not in GROUP_COLUMNS:
        raise DataError(f"split: --group must be one of {', '.join(GROUP_COLUMNS)}, got '{plan.group}'")
    from ..datasets import resolve

    src, out = resolve(path), Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file, expected a folder")
    if src.resolve().parent == out.resolve() and src.name in PART_FILES:
        raise DataError(f"{src}: is one of split's outputs in --out {out}; split it into another folder")
    if src.suffix.lower() in (".jsonl", ".json", ".txt"):
        raise DataError(f"{src}: split reads TSV files (a header row, then one row per line)")
    reader = ExampleReader(src, fmt="tsv", label_column=plan.stratify or label_column)
    rows = list(reader)
    if plan.group:
        keys = [getattr(e, plan.group) for e in rows]
        if any(k is None for k in keys):
            raise DataError(f"{reader.path}: --group {plan.group}: the file has no '{plan.group}' column")
    else:
        keys = [e.label for e in rows]
    need = plan.dev + plan.test + (plan.train or 0)
    if need > len(rows) or (plan.train is None and need >= len(rows)):
        raise DataError(
            f"{reader.path}: {len(rows)} rows cannot give dev {plan.dev} + test {plan.test}"
            + (f" + train {plan.train}" if plan.train else " and a training part")
        )
    rng = random.Random(plan.seed)
    sizes = [plan.test, plan.dev] + ([plan.train] if plan.train is not None else [])
    if plan.group:
        test, dev, train, *rest = _cut(_grouped_order(keys, rng), keys, sizes)
    else:
        test, dev, train, *rest = _stratified(keys if plan.stratify else ["-"] * len(rows), sizes, rng)
    if not train or (plan.dev and not dev) or (plan.test and not test):
        raise DataError(
            f"{reader.path}: {len(set(keys))} groups of {plan.group} cannot give dev {plan.dev}, test {plan.test} "
            f"and a training part (a part takes whole groups)"
        )
    raw = reader.path.read_bytes().decode("utf-8-sig").split("\n")
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out, "datadistill split"):
        return _write(out, reader, rows, raw, (train, dev, test, rest), plan, label_column)


def _write(out: Path, reader, rows, raw, parts, plan: SplitPlan, label_column: str) -> dict:
    train, dev, test, rest = parts
    header = raw[0].rstrip("\r") + "\n"
    for name in PART_FILES:  # an earlier split's parts must not stay beside this one's
        (out / name).unlink(missing_ok=True)
    counts = {}
    for name, idx in (("train", train), ("dev", dev), ("test", test)):
        if not idx:  # e.g. --test 0: the test set is another file
            continue
        idx = sorted(idx)  # the source's order within a part
        with atomic_write(out / f"{name}.tsv") as f:
            f.write(header + "".join(raw[rows[i].line - 1].rstrip("\r") + "\n" for i in idx))
        counts[name] = _count(rows, idx)
    if rest and rest[0]:
        idx = sorted(rest[0])
        pair = any(e.text_b is not None for e in rows)
        with atomic_write(out / "unlabelled.tsv") as f:
            ExampleWriter(f, ["text_a"] + (["text_b"] if pair else [])).write_many(rows[i] for i in idx)
        counts["unlabelled"] = {"rows": len(idx)}
    record = {
        "source": str(reader.path.resolve()),
        "source_digest": file_digest(reader.path),  # sha256, first 16 hex digits
        "plan": plan.__dict__,
        "label_column": plan.stratify or label_column,
        "parts": counts,
    }
    (out / "split.json").write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return record


def _count(rows, idx: list[int]) -> dict:
    by_label: dict[str, int] = {}
    for i in idx:
        by_label[rows[i].label] = by_label.get(rows[i].label, 0) + 1
    return {"rows": len(idx), "labels": dict(sorted(by_label.items()))}
