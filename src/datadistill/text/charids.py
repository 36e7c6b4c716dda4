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
def _space() -> np.ndarray:
    r"""Every code point Python's `\s` (str.isspace) matches: never tokens. Built on first use, not at import."""
    return np.array([c for c in range(sys.maxunicode + 1) if chr(c).isspace()], dtype=np.uint32)


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
        cp = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)           # [N]
        keep = ~np.isin(cp, _space())
        ids = self.table[np.minimum(cp, len(self.table) - 1)]
        ids[cp >= len(self.table)] = self.vocab.unk_id
        get, unk = self.vocab.stoi.get, self.vocab.unk_id
        for m in _LATIN_RE.finditer(s):  # a Latin/digit run is one token, id at its first position
            a, b = m.span()
            ids[a] = get(m.group(), unk)
            keep[a + 1: b] = False
        lengths = np.fromiter((len(t) for t in lowered), dtype=np.int64, count=len(lowered))
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        pos = np.flatnonzero(keep)
        bounds = np.searchsorted(pos, np.concatenate([starts, [len(cp)]]))
        return [ids[pos[bounds[i]: min(bounds[i + 1], bounds[i] + max_len)]] if bounds[i + 1] > bounds[i]
                else np.array([unk], dtype=np.int64) for i in range(len(lowered))]
