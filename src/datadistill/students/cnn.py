"""CNN (Kim 2014): embeddings -> parallel 1-D convolutions of several widths -> max-pool over time."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, check_ranges
from .base import Dims, PairOptions, Student, length_mask, register_student


@dataclass
class CnnConfig(PairOptions):
    emb_dim: int = 64
    filters: int = 64
    widths: list[int] = field(default_factory=lambda: [2, 3])
    dropout: float = 0.3

    RANGES = {"emb_dim": (1, 65_536), "filters": (1, 65_536), "dropout": (0, 1, "right-open")}

    def validate(self) -> None:
        check_ranges(self)
        if not self.widths or any(w < 1 for w in self.widths):
            raise ConfigError(f"widths lists convolution widths of 1 or more, got {self.widths}")


@register_student("cnn", CnnConfig)
class CNN(Student):
    positional_ngrams = True

    def __init__(self, cfg: CnnConfig, dims: Dims) -> None:
        super().__init__(cfg, dims)
        self.build_embeddings(cfg.emb_dim, cfg.dropout / 2)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.emb_dim, cfg.filters, w, padding=w - 1) for w in cfg.widths)
        self.out_dim = cfg.filters * len(cfg.widths)
        self.build_head(cfg.dropout)

    def encode(self, ids, lengths, ngrams, shared=None):
        x = self.embed(ids, ngrams, shared).transpose(1, 2)  # [B, E, L]
        pooled = []
        for conv in self.convs:
            w = conv.kernel_size[0]
            # max_t relu(W x_t + b) == relu(max_t(W x_t) + b): pool first, then bias and relu on [B, F]
            # only; windows past the text (t >= length + w - 1) get -inf so they never win the max.
            h = F.conv1d(x, conv.weight, None, padding=w - 1)  # [B, F, L + w - 1]
            past = ~length_mask(lengths + w - 1, h.size(2))  # [B, L + w - 1]
            h = h.masked_fill(past[:, None, :], float("-inf"))
            pooled.append(torch.relu(h.amax(dim=2) + conv.bias))  # [B, F]
        return torch.cat(pooled, dim=-1)  # [B, F * len(widths)]
