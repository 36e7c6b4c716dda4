"""The label map: label strings in files <-> ids in models. Built from the training file, saved with every model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable


class LabelMap:
    """Ordered labels; ids are positions. Numeric labels sort numerically ('2' < '10'), others as text."""

    def __init__(self, labels: Iterable[str]) -> None:
        self.labels: list[str] = list(labels)
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"duplicate labels in label map: {self.labels}")
        self._ids = {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def from_labels(cls, labels: Iterable[str | None]) -> "LabelMap":
        found = {label for label in labels if label is not None}
        if not found:
            raise ValueError("no labels found to build a label map from")
        try:
            ordered = sorted(found, key=lambda s: (float(s), s))
        except ValueError:
            ordered = sorted(found)
        return cls(ordered)

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self._ids

    def id(self, label: str) -> int:
        try:
            return self._ids[label]
        except KeyError:
            raise KeyError(f"label '{label}' is not in the label map (known: {', '.join(self.labels)})") from None

    def to_dict(self) -> dict:
        return {"labels": self.labels}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "LabelMap":
        return cls(json.loads(Path(path).read_text(encoding="utf-8"))["labels"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and other.labels == self.labels

    def __repr__(self) -> str:
        return f"LabelMap({self.labels})"
