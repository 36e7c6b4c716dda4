"""Bag of words (fastText-style): mean of token and hashed n-gram embeddings -> MLP."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Dims, Student, register_student


@dataclass
class BowConfig:
    emb_dim: int = 64
    hidden: int = 0         # 0: no hidden layer (a linear model on the embedding mean, as fastText)
    dropout: float = 0.2


@register_student("bow", BowConfig)
class BOW(Student):
    def __init__(self, cfg: BowConfig, dims: Dims) -> None:
        super().__init__(cfg, dims)
        self.tok = nn.EmbeddingBag(dims.vocab_size, cfg.emb_dim, mode="sum", padding_idx=0)
        self.ngr = nn.EmbeddingBag(dims.ngram_buckets, cfg.emb_dim, mode="sum", padding_idx=0) \
            if dims.ngram_buckets else None
        self.mlp = nn.Sequential(nn.Linear(cfg.emb_dim, cfg.hidden), nn.Tanh()) if cfg.hidden else nn.Identity()
        self.out_dim = cfg.hidden or cfg.emb_dim
        self.build_head(cfg.dropout)

    def encode(self, ids, lengths, ngrams):
        total = self.tok(ids)                                         # [B, E] sum over tokens
        count = lengths.clamp(min=1).to(total.dtype)
        if self.ngr is not None and ngrams is not None:
            total = total + self.ngr(ngrams)
            count = count + (ngrams != 0).sum(1).to(total.dtype)
        return self.mlp(total / count[:, None])                      # [B, out_dim]
