"""CNN (Kim 2014): embeddings -> parallel 1-D convolutions of several widths -> max-pool over time."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .base import Dims, Student, aligned_ngrams, length_mask, masked_max, register_student


@dataclass
class CnnConfig:
    emb_dim: int = 128
    filters: int = 128
    widths: list[int] = field(default_factory=lambda: [2, 3, 4])
    dropout: float = 0.3


@register_student("cnn", CnnConfig)
class CNN(Student):
    positional_ngrams = True

    def __init__(self, cfg: CnnConfig, dims: Dims) -> None:
        super().__init__(cfg, dims)
        self.emb = nn.Embedding(dims.vocab_size, cfg.emb_dim, padding_idx=0)
        self.bigram = nn.Embedding(dims.ngram_buckets, cfg.emb_dim, padding_idx=0) if dims.ngram_buckets else None
        self.convs = nn.ModuleList(nn.Conv1d(cfg.emb_dim, cfg.filters, w, padding=w - 1) for w in cfg.widths)
        self.emb_drop = nn.Dropout(cfg.dropout / 2)
        self.out_dim = cfg.filters * len(cfg.widths)
        self.build_head(cfg.dropout)

    def encode(self, ids, lengths, ngrams):
        x = self.emb(ids)                                             # [B, L, E]
        if self.bigram is not None and ngrams is not None:
            x = x + self.bigram(aligned_ngrams(ngrams, ids.size(1)))  # char + char-bigram embedding
        x = self.emb_drop(x).transpose(1, 2)                          # [B, E, L]
        pooled = []
        for conv in self.convs:
            h = torch.relu(conv(x))                                   # [B, F, L + w - 1]
            # a window is real if it overlaps a real token: positions < length + w - 1
            mask = length_mask(lengths + conv.kernel_size[0] - 1, h.size(2))
            pooled.append(masked_max(h.transpose(1, 2), mask))        # [B, F]
        return torch.cat(pooled, dim=-1)                              # [B, F * len(widths)]
