"""Texts -> padded id arrays for the students: tokenize, look up the vocabulary, hash n-grams.

Torch-free: `Featurizer.arrays` gives numpy arrays (what an ONNX runtime reads); `collate` wraps the
same arrays in torch tensors (what the students read), importing torch only then.

Hashed n-grams (fastText's trick) give bag-of-words students word-order and word-boundary
information without a word segmenter: the id of the n-gram (t1..tn) is a polynomial hash of the
token ids modulo `ngram_buckets`; bucket 0 is padding.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from ..config import ConfigError, check_ranges
from ..registry import unknown_name_message
from .tokenize import TOKENIZERS, get_tokenizer
from .vocab import Vocab

if TYPE_CHECKING:
    import torch

_PRIME = 1_000_003  # the "poly" hash's multiplier
NGRAM_HASHES = ("mix", "poly")
_MUL = np.uint64(0x9E3779B97F4A7C15)  # the "mix" hash's: 2^64 / golden ratio, odd


@dataclass
class FeatureConfig:
    """How a student sees text."""

    tokenizer: str = "char"
    max_len: int | None = None  # tokens kept per text (longer texts are cut); None: the student's default
    ngrams: list[int] | None = None  # e.g. [2, 3]: hashed bigrams and trigrams; None: the student's default
    ngram_buckets: int | None = None  # hashed n-gram ids; None: the student's default (Student.default_buckets)
    ngram_hash: str = "mix"  # "mix" (spreads n-grams over every bucket) or "poly" (models made before it)
    vocab_min_freq: int = 1
    vocab_max_size: int = 50_000

    RANGES = {
        "max_len": (1, 1_000_000),
        "vocab_min_freq": (1, None),
        "vocab_max_size": (3, 100_000_000),
        "ngram_buckets": (0, 100_000_000),
    }

    def validate(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(unknown_name_message("tokenizer", self.tokenizer, TOKENIZERS.names()))
        if any(n < 2 for n in self.ngrams or []):
            raise ConfigError(f"ngrams lists n-gram orders of 2 or more, got {self.ngrams}")
        if self.ngram_hash not in NGRAM_HASHES:
            raise ConfigError(f"ngram_hash must be one of {', '.join(NGRAM_HASHES)}, got {self.ngram_hash!r}")
        if self.ngrams and self.ngram_buckets is not None and self.ngram_buckets < 2:
            raise ConfigError("ngram_buckets must be at least 2 when ngrams are used")
        check_ranges(self)


def hash_ngrams(
    ids: np.ndarray, lengths: np.ndarray, orders: list[int], buckets: int, method: str = "mix"
) -> np.ndarray:
    """Hashed n-gram ids [B, sum over orders of (L - n + 1)] of a padded batch ids [B, L].

    Computed for the whole batch at once with numpy (a per-text loop costs more than the network).
    The n-gram starting at t gets id 1 + hash % (buckets - 1) when it lies inside the text, else 0
    (padding); for order 2 the ids stay aligned with positions (bigram t = tokens t, t+1).

    method "mix": a 64-bit polynomial over the order and the token ids with an odd multiplier (2^64 / the
    golden ratio), multiplied once more; its high 32 bits pick the bucket (multiplicative hashing), so
    n-grams spread over all buckets, and it costs less than "poly" (measured). "poly": the first versions' hash, kept so that
    models trained with it read text as they were trained; its multiplier modulo buckets - 1 is small
    (13 for 100,000 buckets, 4 for 1,000,000), so the char bigrams of a 3,000-char vocabulary fell into
    only 42,000 (15,000) distinct buckets.
    """
    B, L = ids.shape
    u = ids.astype(np.uint64) if method == "mix" else None
    out = []
    for n in orders:
        if L < n:
            continue
        if method == "poly":
            h = ids[:, : L - n + 1].copy()
            for j in range(1, n):
                h *= _PRIME
                h += ids[:, j : L - n + 1 + j]
            h %= buckets - 1
        else:
            with np.errstate(over="ignore"):  # uint64 arithmetic wraps around on purpose
                h = np.full((B, L - n + 1), n, dtype=np.uint64)
                for j in range(n):
                    h *= _MUL
                    h += u[:, j : L - n + 1 + j]
                h *= _MUL  # once more, so that the last token reaches the high bits too
            h >>= np.uint64(32)  # the high 32 bits, where the multiplications mixed every input bit
            h = h.view(np.int64) % (buckets - 1)
        h += 1
        h[np.arange(L - n + 1)[None, :] + n > lengths[:, None]] = 0
        out.append(h)
    return np.concatenate(out, axis=1) if out else np.zeros((B, 1), dtype=np.int64)


class Featurizer:
    """Turns texts (or pre-tokenized lists) into the students' batch dict."""

    def __init__(self, cfg: FeatureConfig, vocab: Vocab) -> None:
        if cfg.max_len is None or cfg.ngrams is None or (cfg.ngrams and cfg.ngram_buckets is None):
            raise ValueError(
                "a featurizer needs concrete features: max_len, ngrams and ngram_buckets (the student step fills them)"
            )
        self.cfg = cfg
        self.vocab = vocab
        self.tokenizer = get_tokenizer(cfg.tokenizer)
        self._char_ids = None
        if cfg.tokenizer == "char":
            from .charids import CharIds

            self._char_ids = CharIds(vocab)

    def tokenize(self, text: str) -> list[str]:
        return self.tokenizer.tokenize(text)

    def encode_tokens(self, tokens: list[str]) -> np.ndarray:
        """Token ids [L] (at least one: an empty text reads as [UNK])."""
        return np.asarray(self.vocab.encode(tokens[: self.cfg.max_len]) or [self.vocab.unk_id], dtype=np.int64)

    def encode(self, text: str) -> np.ndarray:
        return self.encode_tokens(self.tokenize(text))

    def encode_many(self, texts: list[str]) -> list[np.ndarray]:
        """`[encode(t) for t in texts]`, vectorized over the batch for the char tokenizer."""
        if self._char_ids is not None:
            return self._char_ids(texts, self.cfg.max_len)
        return [self.encode(t) for t in texts]

    def arrays(self, items_a: list[np.ndarray], items_b: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Pad encoded texts into a batch of int64 arrays: ids_a [B, L], len_a [B], ngr_a [B, G] (and _b for pairs)."""
        batch = self._side(items_a, "a")
        if items_b is not None:
            batch.update(self._side(items_b, "b"))
        return batch

    def collate(self, items_a: list[np.ndarray], items_b: list[np.ndarray] | None = None) -> dict[str, torch.Tensor]:
        """`arrays` as torch tensors (sharing their memory): the students' batch dict."""
        import torch

        return {k: torch.from_numpy(v) for k, v in self.arrays(items_a, items_b).items()}

    def batch(self, texts_a: list[str], texts_b: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self.collate(self.encode_many(texts_a), self.encode_many(texts_b) if texts_b is not None else None)

    def _side(self, seqs: list[np.ndarray], side: str) -> dict[str, np.ndarray]:
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        ids = np.zeros((len(seqs), max(1, int(lengths.max(initial=1)))), dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
        batch = {f"ids_{side}": ids, f"len_{side}": lengths}
        if self.cfg.ngrams:
            batch[f"ngr_{side}"] = hash_ngrams(
                ids, lengths, self.cfg.ngrams, self.cfg.ngram_buckets, self.cfg.ngram_hash
            )
        return batch
