"""Char tokenization + vocabulary lookup for a whole batch at once, with numpy.

Gives exactly the ids of `CharTokenizer.tokenize` followed by `Vocab.encode` (a test checks this on
awkward text), about ten times faster: the per-character Python work (a regex match and a dict
lookup per character) was most of a bag-of-words student's prediction time. Characters become
code points (UTF-32) looked up in a table; only Latin/digit runs, a few per review, go through the
regex and the dictionary. Texts holding the literal `[UNK]` take the ordinary path.
"""

from __future__ import annotations

import functools
import re
import sys

import numpy as np

from .tokenize import _LATIN, get_tokenizer
from .vocab import UNK, Vocab

_LATIN_RE = re.compile(_LATIN)


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    r"""Boolean tables indexed by code point (the last entry, False, stands for every larger one):
    `is_space` for what Python's `\s` (str.isspace) matches, never tokens; `starts_latin` for the
    characters a Latin/digit run starts with (those of `_LATIN`'s first class, all in the BMP).
    Built on first use (~0.2 s), not at import."""
    spaces = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    latin = [c for c in range(0x10000) if _LATIN_RE.fullmatch(chr(c))]
    tables = []
    for cps in (spaces, latin):
        t = np.zeros(max(cps) + 2, dtype=bool)
        t[cps] = True
        tables.append(t)
    return tables[0], tables[1]


def _lookup(table: np.ndarray, cp: np.ndarray) -> np.ndarray:
    return table[np.minimum(cp, len(table) - 1)]


class CharIds:
    """`CharIds(vocab)(texts, max_len)` -> one int64 id array per text (at least one id: empty -> [UNK])."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        singles = {ord(t): i for t, i in vocab.stoi.items() if len(t) == 1}
        self.table = np.full(max(singles, default=0) + 1, vocab.unk_id, dtype=np.int64)  # code point -> id
        self.table[list(singles)] = list(singles.values())
        self.slow = get_tokenizer("char")

    def __call__(self, texts: list[str], max_len: int) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(texts)
        fast = [i for i, t in enumerate(texts) if UNK not in t]
        for i in set(range(len(texts))) - set(fast):
            out[i] = self._one(self.vocab.encode(self.slow.tokenize(texts[i])[:max_len]))
        if fast:
            for i, ids in zip(fast, self._batch([texts[i].lower() for i in fast], max_len)):
                out[i] = ids
        return out  # type: ignore[return-value]

    def _one(self, ids: list[int]) -> np.ndarray:
        return np.asarray(ids or [self.vocab.unk_id], dtype=np.int64)

    def _batch(self, lowered: list[str], max_len: int) -> list[np.ndarray]:
        # "\n" between texts: whitespace, so it is never a token and it ends any Latin run.
        s = "\n".join(lowered)
        cp = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)  # [N]
        is_space, starts_latin = _tables()
        keep = ~_lookup(is_space, cp)
        ids = self.table[np.minimum(cp, len(self.table) - 1)]
        ids[cp >= len(self.table)] = self.vocab.unk_id
        # A Latin/digit run is one token, its id at its first position. Only the starts of runs of
        # first-class characters go to the regex (a whole-string finditer cost as much as everything
        # else here): a start inside the previous match ("5" in "3.5") is part of it, and a match that
        # ends right before a first-class character ("a.b" + fullwidth "ｃ") is followed by one there.
        lat = _lookup(starts_latin, cp)
        run_starts = np.flatnonzero(lat[1:] & ~lat[:-1]) + 1
        get, unk, match, end = self.vocab.stoi.get, self.vocab.unk_id, _LATIN_RE.match, 0
        for a in ([0] if len(lat) and lat[0] else []) + run_starts.tolist():
            while a >= end:
                end = match(s, a).end()  # type: ignore[union-attr]  # lat[a]: the pattern matches at a
                ids[a] = get(s[a:end], unk)
                keep[a + 1 : end] = False
                if end < len(lat) and lat[end]:
                    a = end
        lengths = np.fromiter((len(t) for t in lowered), dtype=np.int64, count=len(lowered))
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        pos = np.flatnonzero(keep)
        kept = ids[pos]  # the tokens of all texts
        bounds = np.searchsorted(pos, np.concatenate([starts, [len(cp)]])).tolist()
        # views into `kept`, one per text
        return [
            kept[a : min(b, a + max_len)] if b > a else np.array([unk], dtype=np.int64)
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
