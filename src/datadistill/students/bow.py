"""Bag of words (fastText-style): mean of token and hashed n-gram embeddings -> MLP."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import check_ranges
from .base import Dims, Student, register_student


@dataclass
class BowConfig:
    emb_dim: int = 64
    hidden: int = 0  # 0: no hidden layer (a linear model on the embedding mean, as fastText)
    dropout: float = 0.2

    RANGES = {"emb_dim": (1, 65_536), "hidden": (0, 65_536), "dropout": (0, 1, "right-open")}

    def validate(self) -> None:
        check_ranges(self)


@register_student("bow", BowConfig)
class BOW(Student):
    default_features = {"max_len": 512, "ngrams": [2, 3]}  # hashed char bigrams and trigrams (fastText-style)

    def __init__(self, cfg: BowConfig, dims: Dims) -> None:
        super().__init__(cfg, dims)
        self.tok = nn.EmbeddingBag(dims.vocab_size, cfg.emb_dim, mode="sum", padding_idx=0)
        self.ngr = (
            nn.EmbeddingBag(dims.ngram_buckets, cfg.emb_dim, mode="sum", padding_idx=0) if dims.ngram_buckets else None
        )
        self.mlp = nn.Sequential(nn.Linear(cfg.emb_dim, cfg.hidden), nn.Tanh()) if cfg.hidden else nn.Identity()
        self.out_dim = cfg.hidden or cfg.emb_dim
        self.build_head(cfg.dropout)

    def encode(self, ids, lengths, ngrams):
        total = bag_sum(self.tok, ids)  # [B, E] sum over tokens
        count = lengths.clamp(min=1).to(total.dtype)
        if self.ngr is not None and ngrams is not None:
            total = total + bag_sum(self.ngr, ngrams)
            count = count + (ngrams != 0).sum(1).to(total.dtype)
        return self.mlp(total / count[:, None])  # [B, out_dim]

    def for_export(self) -> nn.Module:
        """Without a hidden layer a single-text BOW is linear, so its head folds into the embedding
        tables (FoldedBow): onnxruntime then gathers num_labels numbers per token instead of emb_dim
        (~10x faster batches; its Gather has no embedding-bag kernel)."""
        return FoldedBow(self) if not self.cfg.hidden and not self.dims.pair else self


class FoldedBow(nn.Module):
    """A single-text BOW without hidden layer with its head folded in: logits = b + sum_t T[t] / count,
    T = E W^T per table (row 0, padding, zero). Same logits as BOW.forward up to float rounding."""

    def __init__(self, bow: BOW) -> None:
        super().__init__()
        linear = bow.head[-1]
        with torch.no_grad():
            self.register_buffer("tok_table", _folded(bow.tok.weight, linear.weight))
            self.register_buffer("ngr_table", _folded(bow.ngr.weight, linear.weight) if bow.ngr is not None else None)
            self.register_buffer("bias", linear.bias.detach().clone())

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, ngrams = batch["ids_a"], batch.get("ngr_a")
        total = F.embedding(ids, self.tok_table).sum(1)  # [B, C]
        count = batch["len_a"].clamp(min=1).to(total.dtype)
        if self.ngr_table is not None and ngrams is not None:
            total = total + F.embedding(ngrams, self.ngr_table).sum(1)
            count = count + (ngrams != 0).sum(1).to(total.dtype)
        return total / count[:, None] + self.bias


def _folded(emb: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    table = emb.detach() @ head.detach().T  # [V, C]
    table[0] = 0.0  # padding adds nothing (the bag weights it by 0)
    return table


def bag_sum(bag: nn.EmbeddingBag, ids: torch.Tensor) -> torch.Tensor:
    """Sum of the embeddings of the non-zero ids of each row: ids [B, L] (0 = padding) -> [B, E].

    Same result and gradients as `bag(ids)` with padding_idx 0, but passes only the real ids with
    offsets: embedding_bag given a padding_idx takes a slow path (25x slower on CPU, measured).
    """
    if torch.jit.is_tracing():
        # An ONNX export traces the network; ONNX has no embedding bag (the exporter's per-row Loop runs
        # ~10x slower in onnxruntime): gather, mask, sum.
        return (F.embedding(ids, bag.weight) * (ids != 0).unsqueeze(-1).to(bag.weight.dtype)).sum(1)
    if not torch.is_grad_enabled():
        # Prediction and dev evaluation: weighting padding by 0 inside the kernel skips the masked copy
        # (~2.5x faster on CPU, measured) with the same sums; training keeps the masked path, whose
        # gradients add up in the order every trained model so far was made with.
        return F.embedding_bag(ids, bag.weight, mode="sum", per_sample_weights=(ids != 0).to(bag.weight.dtype))
    mask = ids != 0
    counts = mask.sum(1)
    return F.embedding_bag(ids[mask], bag.weight, torch.cumsum(counts, 0) - counts, mode="sum")
