"""A student's training rows in flat arrays, read from files as a stream: memory grows with the tokens
kept, not with Python objects per row.

Every side's token ids lie in one int32 array (`ids`, with `start`/`length` per row and side), the
labels, the gold flags and the teacher's scores in arrays [N] and [N, C] (NaN where a row has none).
A part.1 of 2M reviews thus takes about 4 bytes per token plus 25 bytes per row, instead of the
several kilobytes per row of Example objects, token lists and per-row arrays. `table[i]` gives one
`Row` view for a batch.

The vocabulary is built from the training rows' token counts in the same pass: each new token gets
a provisional id as it is met, and the ids are mapped to vocabulary ids once the counts are known.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .data.io import Example
from .data.labels import LabelMap
from .errors import DataError
from .text.tokenize import Tokenizer
from .text.vocab import PAD, UNK, Vocab


@dataclass
class Row:
    """One encoded row: token ids per side, the label id, teacher scores if any."""

    a: np.ndarray  # token ids [L]
    b: np.ndarray | None
    label: int
    probs_T: list[float] | None = None
    logits_T: list[float] | None = None
    gold: bool = True  # part.0 (original labelled data) rather than teacher-labelled part.1

    @property
    def has_T(self) -> bool:
        return self.probs_T is not None or self.logits_T is not None


class RowTable:
    """Rows in flat arrays (see the module docstring). Build with `RowBuilder`."""

    def __init__(self, ids, start, length, label, gold, probs, logits, pair: bool) -> None:
        self.ids = ids  # int32 [T]: every side's token ids, concatenated
        self.start, self.length = start, length  # int64 [N, sides]
        self.label, self.gold = label, gold  # int64 [N], bool [N]
        self.probs, self.logits = probs, logits  # float32 [N, C], NaN rows where absent
        self.pair = pair

    def __len__(self) -> int:
        return len(self.label)

    def side(self, i: int, s: int) -> np.ndarray:
        st = self.start[i, s]
        return self.ids[st : st + self.length[i, s]]

    def __getitem__(self, i: int) -> Row:
        p, z = self.probs[i], self.logits[i]
        return Row(
            a=self.side(i, 0),
            b=self.side(i, 1) if self.pair else None,
            label=int(self.label[i]),
            probs_T=None if np.isnan(p[0]) else p.tolist(),
            logits_T=None if np.isnan(z[0]) else z.tolist(),
            gold=bool(self.gold[i]),
        )

    def lengths(self) -> np.ndarray:
        """Tokens of side a per row [N] (what batches are grouped by)."""
        return self.length[:, 0]

    def take(self, keep: np.ndarray) -> "RowTable":
        """The rows `keep` (indices), sharing the token array."""
        return RowTable(
            self.ids,
            self.start[keep],
            self.length[keep],
            self.label[keep],
            self.gold[keep],
            self.probs[keep],
            self.logits[keep],
            self.pair,
        )

    @staticmethod
    def concat(tables: list["RowTable"]) -> "RowTable":
        """One table of several sharing one token array (as `RowBuilder.tables` returns them)."""
        t0 = tables[0]
        return RowTable(
            t0.ids,
            np.concatenate([t.start for t in tables]),
            np.concatenate([t.length for t in tables]),
            np.concatenate([t.label for t in tables]),
            np.concatenate([t.gold for t in tables]),
            np.concatenate([t.probs for t in tables]),
            np.concatenate([t.logits for t in tables]),
            t0.pair,
        )


class RowBuilder:
    """Tokenizes examples into provisional ids as they stream by; `tables()` maps them to the
    vocabulary built from the parts marked `count=True` and returns one RowTable per part."""

    def __init__(
        self, tokenizer: Tokenizer, label_map: LabelMap, max_len: int, pretokenized: bool = False, pair: bool = False
    ) -> None:
        self.tokenizer, self.label_map, self.max_len = tokenizer, label_map, max_len
        self.pretokenized, self.pair = pretokenized, pair
        self.prov: dict[str, int] = {UNK: 0}  # token -> provisional id; an empty side reads as [UNK]
        self.ids = array("i")
        self.counted = array("i")  # provisional ids the vocabulary counts, folded into `counts` now and then
        self.counts = np.zeros(0, dtype=np.int64)
        self.parts: list[dict] = []

    def _side(self, tokens: list[str], count: bool) -> tuple[int, int]:
        prov = self.prov
        if count:  # the vocabulary counts every token, also those past max_len
            ids = [prov.setdefault(t, len(prov)) for t in tokens]
            self.counted.extend(ids)
            if len(self.counted) >= 1 << 22:
                self._fold()
            ids = ids[: self.max_len] or [0]
        else:
            ids = [prov.setdefault(t, len(prov)) for t in tokens[: self.max_len]] or [0]  # 0: [UNK]
        start = len(self.ids)
        self.ids.extend(ids)
        return start, len(ids)

    def _fold(self) -> None:
        """Add the pending provisional ids to the counts (keeps memory flat: 4 bytes a token at most 16 MB)."""
        c = np.bincount(np.frombuffer(self.counted, dtype=np.int32), minlength=len(self.prov))
        c[: len(self.counts)] += self.counts
        self.counts, self.counted = c, array("i")

    def add(self, examples: Iterable[Example], gold: bool, count: bool, check_scores: str | None = None) -> int:
        """Encode a stream of examples as one part; returns its rows. check_scores names the file whose
        probs/logits must have one number per label (part.1)."""
        k = len(self.label_map)
        start, length, label, probs, logits = array("q"), array("q"), array("q"), array("f"), array("f")
        nan = [float("nan")] * k
        sides = 2 if self.pair else 1
        for ex in examples:
            ta = ex.tokens_a if self.pretokenized and ex.tokens_a else self.tokenizer.tokenize(ex.text_a)
            s, n = self._side(ta, count)
            start.append(s)
            length.append(n)
            if self.pair:
                tb = ex.tokens_b if self.pretokenized and ex.tokens_b else self.tokenizer.tokenize(ex.text_b or "")
                s, n = self._side(tb, count)
                start.append(s)
                length.append(n)
            label.append(self.label_map.id(ex.label))
            for key, out in (("probs", probs), ("logits", logits)):
                v = getattr(ex, key)
                if v is not None and len(v) != k:
                    raise DataError(
                        f"{check_scores}, line {ex.line}: {key} has {len(v)} numbers for {k} labels "
                        f"({', '.join(self.label_map.labels)}): was it labelled by a teacher of another task?"
                    )
                out.extend(v if v is not None else nan)
        n = len(label)
        self.parts.append(
            {
                "start": np.frombuffer(start, dtype=np.int64).reshape(n, sides).copy(),
                "length": np.frombuffer(length, dtype=np.int64).reshape(n, sides).copy(),
                "label": np.frombuffer(label, dtype=np.int64).copy(),
                "gold": np.full(n, gold),
                "probs": np.frombuffer(probs, dtype=np.float32).reshape(n, k).copy(),
                "logits": np.frombuffer(logits, dtype=np.float32).reshape(n, k).copy(),
            }
        )
        return n

    def vocab(self, min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """The vocabulary of the counted parts: most frequent first, ties by text (as `Vocab.build`)."""
        self._fold()
        counts, tokens = self.counts, list(self.prov)
        return Vocab.from_counts({tokens[i]: int(c) for i, c in enumerate(counts) if c}, min_freq, max_size)

    def tables(self, vocab: Vocab) -> list[RowTable]:
        """One RowTable per part added, all sharing one array of vocabulary ids."""
        lookup = np.array([vocab.stoi.get(t, vocab.unk_id) for t in self.prov], dtype=np.int32)
        lookup[0] = vocab.unk_id  # the empty side's [UNK]
        ids = np.frombuffer(self.ids, dtype=np.int32)  # mapped in place, a block at a time: no second copy
        for s in range(0, len(ids), 1 << 20):
            ids[s : s + (1 << 20)] = lookup[ids[s : s + (1 << 20)]]
        self.ids = array("i")  # the tables hold the mapped ids now
        return [RowTable(ids, pair=self.pair, **p) for p in self.parts]


__all__ = ["Row", "RowTable", "RowBuilder", "PAD", "UNK"]
