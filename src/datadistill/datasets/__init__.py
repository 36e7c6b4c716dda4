"""Built-in data sets, addressed by name wherever a data file is expected: `chnsenticorp:train`.

ChnSentiCorp (the split ERNIE reports on) ships inside the package, xz-compressed (1.2 MB). A name is
unpacked once into the cache (`$DATADISTILL_CACHE/datasets`, default ~/.cache/datadistill) and read
from there like any file. Besides its train/dev/test parts, ChnSentiCorp offers the label-scarce
setting of the main demo: `train_500`, a fixed class-balanced sample of 500 labelled reviews, and
`unlabelled`, the other 9,100 training reviews as unlabelled texts.
"""

from __future__ import annotations

import lzma
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DataError

HERE = Path(__file__).resolve().parent
NAME = re.compile(r"^([a-z][a-z0-9_]*):([a-z][a-z0-9_]*)$")


@dataclass
class Dataset:
    description: str
    source: str
    parts: dict[str, str]  # part -> packaged file (relative to this folder)
    derived: dict[str, Callable[[Path], str]] = field(
        default_factory=dict
    )  # part -> its text, from the unpacked folder
    notes: dict[str, str] = field(default_factory=dict)


def _scarce(folder: Path, n: int = 500, seed: int = 1) -> tuple[str, list[str], list[str]]:
    """(header, the n kept rows, the others): a class-balanced sample of n training rows, fixed by `seed`."""
    lines = (folder / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    by_label: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_label.setdefault(row.split("\t", 1)[0], []).append(i)
    rng = random.Random(seed)
    keep: set[int] = set()
    for label in sorted(by_label):
        keep.update(rng.sample(by_label[label], n // len(by_label)))
    return header, [rows[i] for i in sorted(keep)], [rows[i] for i in range(len(rows)) if i not in keep]


def _train_500(folder: Path) -> str:
    header, kept, _ = _scarce(folder)
    return header + "\n" + "".join(r + "\n" for r in kept)


def _unlabelled(folder: Path) -> str:
    _, _, rest = _scarce(folder)
    return "".join(r.split("\t", 1)[1] + "\n" for r in rest)  # plain text: one review a line


DATASETS: dict[str, Dataset] = {
    "chnsenticorp": Dataset(
        description="ChnSentiCorp: Chinese hotel, laptop and book reviews, sentiment 0 = negative, 1 = positive",
        source="ChnSentiCorp (Tan Songbo), the train/dev/test split used by ERNIE's fine-tuning and data distillation",
        parts={
            "train": "chnsenticorp/train.tsv.xz",
            "dev": "chnsenticorp/dev.tsv.xz",
            "test": "chnsenticorp/test.tsv.xz",
        },
        derived={"train_500": _train_500, "unlabelled": _unlabelled},
        notes={
            "train_500": "500 training reviews, 250 per class (fixed sample, seed 1)",
            "unlabelled": "the other 9,100 training reviews as plain text, labels removed",
        },
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("DATADISTILL_CACHE", Path.home() / ".cache" / "datadistill")) / "datasets"


def is_name(path: str | Path) -> bool:
    return isinstance(path, str) and NAME.match(path) is not None and NAME.match(path).group(1) in DATASETS


def _suffix(part: str) -> str:
    return ".txt" if part == "unlabelled" else ".tsv"  # unlabelled texts are plain text, one a line


def resolve(path: str | Path) -> Path:
    """A built-in name (`chnsenticorp:train`) -> its unpacked file; any other path unchanged."""
    if not isinstance(path, str) or ":" not in path:
        return Path(path)
    m = NAME.match(path)
    if not m or m.group(1) not in DATASETS:
        return Path(path)
    name, part = m.groups()
    ds = DATASETS[name]
    if part not in ds.parts and part not in ds.derived:
        known = ", ".join(f"{name}:{p}" for p in [*ds.parts, *ds.derived])
        raise DataError(f"{path}: no such part of the built-in data set '{name}' (known: {known})")
    folder = cache_dir() / name
    out = folder / f"{part}{_suffix(part)}"
    if not out.is_file():
        for p, rel in ds.parts.items():  # unpack the packaged parts (the derived ones are made from them)
            target = folder / f"{p}.tsv"
            if not target.is_file():
                _write(target, lzma.decompress((HERE / rel).read_bytes()).decode("utf-8"))
        if part in ds.derived:
            _write(out, ds.derived[part](folder))
    return out


def _write(path: Path, text: str) -> None:
    from ..data.io import atomic_write

    with atomic_write(path) as f:
        f.write(text)


def listing() -> list[dict]:
    """Every built-in part: name, rows, what it is and where it comes from."""
    rows = []
    for name, ds in DATASETS.items():
        for part in [*ds.parts, *ds.derived]:
            path = resolve(f"{name}:{part}")
            n = sum(1 for _ in open(path, encoding="utf-8")) - (path.suffix == ".tsv")
            rows.append(
                {"name": f"{name}:{part}", "rows": n, "what": ds.notes.get(part, ds.description), "source": ds.source}
            )
    return rows
