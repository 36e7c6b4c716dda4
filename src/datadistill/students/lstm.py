"""Bidirectional LSTM: embeddings -> BiLSTM (packed, so padding never enters) -> max and mean pooling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import check_ranges
from .base import Dims, PairOptions, Student, length_mask, masked_max, masked_mean, register_student


@dataclass
class LstmConfig(PairOptions):
    emb_dim: int = 64
    hidden: int = 96
    layers: int = 1
    dropout: float = 0.3

    RANGES = {"emb_dim": (1, 65_536), "hidden": (1, 65_536), "layers": (1, 64), "dropout": (0, 1, "right-open")}

    def validate(self) -> None:
        check_ranges(self)


@register_student("lstm", LstmConfig)
class LSTM(Student):
    positional_ngrams = True

    def __init__(self, cfg: LstmConfig, dims: Dims) -> None:
        super().__init__(cfg, dims)
        self.build_embeddings(cfg.emb_dim, cfg.dropout / 2)
        self.rnn = nn.LSTM(
            cfg.emb_dim,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.out_dim = 4 * cfg.hidden
        self.build_head(cfg.dropout)

    def encode(self, ids, lengths, ngrams, shared=None):
        x = self.embed(ids, ngrams, shared)  # [B, L, E]
        lengths = lengths.clamp(min=1)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True)  # [B, L', 2H]
        mask = length_mask(lengths, h.size(1))
        return torch.cat([masked_max(h, mask), masked_mean(h, mask)], dim=-1)  # [B, 4H]
