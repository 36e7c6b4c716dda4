"""`datadistill split`: a fixed, reproducible train/dev/test split of one labelled file.

Rows keep their bytes (the header too). `stratify` keeps every class's share in every part (±1 row):
rows are shuffled within their class and ordered by their rank's position in the class, so every
prefix of the order is a proportional sample. `group` keeps candidates of one query (the same
`text_a`, or a `qid`) in one part, so a model never meets a test query in training. With `train`,
the rows left over go to `unlabelled.tsv` with their text columns only: an honest unlabelled pool.
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


@dataclass
class SplitPlan:
    dev: int
    test: int
    train: int | None = None  # None: all the rows not in dev or test
    stratify: str | None = None  # a label column
    group: str | None = None  # text_a, text_b or qid
    seed: int = 1


def _order(keys: list[str], rng: random.Random) -> list[int]:
    """Row indices in stratified order: any prefix holds each key in proportion (±1)."""
    by_key: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by_key.setdefault(k, []).append(i)
    ranked = []
    for k in sorted(by_key):
        rows = by_key[k]
        rng.shuffle(rows)
        ranked += [((j + rng.random()) / len(rows), i) for j, i in enumerate(rows)]
    return [i for _, i in sorted(ranked)]


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
    reader = ExampleReader(path, fmt="tsv", label_column=plan.stratify or label_column)
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
    order = _grouped_order(keys, rng) if plan.group else _order(keys if plan.stratify else ["-"] * len(rows), rng)
    sizes = [plan.test, plan.dev] + ([plan.train] if plan.train is not None else [])
    test, dev, train, *rest = _cut(order, keys if plan.group else None, sizes)
    raw = reader.path.read_bytes().decode("utf-8-sig").split("\n")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out, "datadistill split"):
        return _write(out, reader, rows, raw, (train, dev, test, rest), plan, label_column)


def _write(out: Path, reader, rows, raw, parts, plan: SplitPlan, label_column: str) -> dict:
    train, dev, test, rest = parts
    header = raw[0].rstrip("\r") + "\n"
    counts = {}
    for name, idx in (("train", train), ("dev", dev), ("test", test)):
        if not idx:  # e.g. --test 0: the test set is another file
            continue
        idx = sorted(idx)  # the source's order within a part
        with atomic_write(out / f"{name}.tsv") as f:
            f.write(header + "".join(raw[rows[i].line - 1].rstrip("\r") + "\n" for i in idx))
        counts[name] = _count(rows, idx)
    if rest:
        idx = sorted(rest[0])
        pair = any(e.text_b is not None for e in rows)
        with atomic_write(out / "unlabelled.tsv") as f:
            ExampleWriter(f, ["text_a"] + (["text_b"] if pair else [])).write_many(rows[i] for i in idx)
        counts["unlabelled"] = {"rows": len(idx)}
    record = {
        "source": str(reader.path),
        "source_sha256": file_digest(reader.path),
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
