"""Texts -> padded id tensors for the students: tokenize, look up the vocabulary, hash n-grams.

Hashed n-grams (fastText's trick) give bag-of-words students word-order and word-boundary
information without a word segmenter: the id of the n-gram (t1..tn) is a polynomial hash of the
token ids modulo `ngram_buckets`; bucket 0 is padding.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import ConfigError
from ..registry import unknown_name_message
from .tokenize import TOKENIZERS, get_tokenizer
from .vocab import Vocab

_PRIME = 1_000_003


@dataclass
class FeatureConfig:
    """How a student sees text."""

    tokenizer: str = "char"
    max_len: int = 256           # tokens kept per text (longer texts are cut)
    ngrams: list[int] = field(default_factory=list)  # e.g. [2, 3]: hashed bigrams and trigrams
    ngram_buckets: int = 200_000
    vocab_min_freq: int = 1
    vocab_max_size: int = 50_000

    def validate(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(unknown_name_message("tokenizer", self.tokenizer, TOKENIZERS.names()))
        if self.max_len < 1:
            raise ConfigError(f"max_len must be at least 1, got {self.max_len}")
        if any(n < 2 for n in self.ngrams):
            raise ConfigError(f"ngrams lists n-gram orders of 2 or more, got {self.ngrams}")
        if self.ngrams and self.ngram_buckets < 2:
            raise ConfigError("ngram_buckets must be at least 2 when ngrams are used")


def hash_ngrams(ids: np.ndarray, orders: list[int], buckets: int) -> np.ndarray:
    """Hashed n-gram ids (1..buckets-1) of one token-id sequence, all orders concatenated."""
    out = []
    for n in orders:
        if len(ids) < n:
            continue
        h = np.zeros(len(ids) - n + 1, dtype=np.int64)
        for j in range(n):
            h = h * _PRIME + ids[j: len(ids) - n + 1 + j]
        out.append(h % (buckets - 1) + 1)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class Featurizer:
    """Turns texts (or pre-tokenized lists) into the students' batch dict."""

    def __init__(self, cfg: FeatureConfig, vocab: Vocab) -> None:
        self.cfg = cfg
        self.vocab = vocab
        self.tokenizer = get_tokenizer(cfg.tokenizer)

    def tokenize(self, text: str) -> list[str]:
        return self.tokenizer.tokenize(text)

    def encode_tokens(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(token ids [L], hashed n-gram ids [G] or None) for one token list."""
        ids = np.asarray(self.vocab.encode(tokens[: self.cfg.max_len]) or [self.vocab.unk_id], dtype=np.int64)
        ng = hash_ngrams(ids, self.cfg.ngrams, self.cfg.ngram_buckets) if self.cfg.ngrams else None
        return ids, ng

    def encode(self, text: str, tokens: list[str] | None = None):
        return self.encode_tokens(tokens if tokens is not None else self.tokenize(text))

    def collate(self, items_a: list, items_b: list | None = None) -> dict[str, torch.Tensor]:
        """Pad encoded items into a batch: ids_a [B, L], len_a [B], ngr_a [B, G] (and _b for pairs)."""
        batch = _pad_side(items_a, "a")
        if items_b is not None:
            batch.update(_pad_side(items_b, "b"))
        return batch

    def batch(self, texts_a: list[str], texts_b: list[str] | None = None) -> dict[str, torch.Tensor]:
        a = [self.encode(t) for t in texts_a]
        b = [self.encode(t) for t in texts_b] if texts_b is not None else None
        return self.collate(a, b)


def _pad(seqs: list[np.ndarray]) -> torch.Tensor:
    width = max(1, max(len(s) for s in seqs))
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return torch.from_numpy(out)


def _pad_side(items: list, side: str) -> dict[str, torch.Tensor]:
    ids = [i for i, _ in items]
    batch = {f"ids_{side}": _pad(ids), f"len_{side}": torch.tensor([len(i) for i in ids], dtype=torch.long)}
    if items and items[0][1] is not None:
        batch[f"ngr_{side}"] = _pad([g for _, g in items])
    return batch
