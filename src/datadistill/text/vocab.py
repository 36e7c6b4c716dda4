"""A token vocabulary with `[PAD]` = 0 and `[UNK]` = 1, built by frequency, saved one token per line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

PAD, UNK = "[PAD]", "[UNK]"


class Vocab:
    def __init__(self, tokens: Iterable[str]) -> None:
        self.itos: list[str] = list(tokens)
        if self.itos[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD} and {UNK}, got {self.itos[:2]}")
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate tokens in vocabulary")

    pad_id, unk_id = 0, 1

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_freq: int = 1, max_size: int | None = None) -> "Vocab":
        """Most frequent tokens first (ties by first appearance order of `Counter`, then text)."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        return cls.from_counts(counts, min_freq, max_size)

    @classmethod
    def from_counts(cls, counts: dict[str, int], min_freq: int = 1, max_size: int | None = None) -> "Vocab":
        """From token counts: most frequent first, ties by text; [PAD] and [UNK] keep ids 0 and 1."""
        counts = {t: c for t, c in counts.items() if t not in (PAD, UNK)}
        items = sorted((kv for kv in counts.items() if kv[1] >= min_freq), key=lambda kv: (-kv[1], kv[0]))
        if max_size is not None:
            items = items[: max(0, max_size - 2)]
        return cls([PAD, UNK] + [t for t, _ in items])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def encode(self, tokens: list[str]) -> list[int]:
        get = self.stoi.get
        return [get(t, 1) for t in tokens]

    def save(self, path: str | Path) -> None:
        Path(path).write_text("\n".join(self.itos) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        text = Path(path).read_text(encoding="utf-8")
        return cls(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"))
