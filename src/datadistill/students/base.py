"""The student contract and registry.

A student encodes one side of the input into a vector u [B, H]; for single texts the logits are
head(u), for pairs head([u, v, |u-v|, u*v]) with one encoder shared by both sides (Conneau et al. 2017).
With `match` (on for pairs) each encoder also sees which of its tokens and n-grams occur in the other
text, the exact-match feature of reading-comprehension and matching models (Chen et al. 2017, DrQA):
a siamese encoder alone cannot tell which words two questions share.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, from_dict
from ..registry import Registry

STUDENTS: Registry[tuple[type, type]] = Registry("student")


def register_student(name: str, config_cls: type):
    """Register a `Student` subclass under `name` together with its hyper-parameter dataclass."""

    def deco(cls):
        STUDENTS.register(name)((cls, config_cls))
        cls.arch = name
        return cls

    return deco


@dataclass
class PairOptions:
    """Hyper-parameters every student has for text pairs (each student's config inherits them)."""

    match: bool | None = None  # mark the tokens and n-grams a text shares with its pair; None: on for pairs


# What one text of a pair shares with the other: (tokens [B, L], n-grams [B, G] or None), True where shared
Shared = tuple[torch.Tensor, "torch.Tensor | None"]


@dataclass
class Dims:
    vocab_size: int
    num_labels: int
    ngram_buckets: int = 0
    pair: bool = False


class Student(nn.Module, abc.ABC):
    """Base class: subclasses build `self.out_dim` and implement `encode`."""

    arch = "base"
    out_dim: int
    # Sequence students read hashed bigrams aligned to positions (bigram t = tokens t, t+1), so they
    # accept features.ngrams == [2] only; bag students accept any orders.
    positional_ngrams = False
    # features used when a config leaves them unset: the settings measured best (bench/RESULTS.md)
    default_features: dict = {"max_len": 256, "ngrams": [2]}

    @classmethod
    def default_buckets(cls, params: dict, pair: bool) -> int:
        """features.ngram_buckets when a config leaves it unset, for these hyper-parameters and data."""
        return 100_000

    @classmethod
    def linear(cls, params: dict) -> bool:
        """Whether the student with these hyper-parameters is linear in its weights (logits = X W + b for
        inputs X that the weights do not change), so that it can be solved full-batch (solve.py)."""
        return False

    def __init__(self, cfg: Any, dims: Dims) -> None:
        super().__init__()
        self.cfg, self.dims = type(self).resolved_config(cfg, dims.pair), dims

    @classmethod
    def resolved_config(cls, cfg: Any, pair: bool) -> Any:
        """The hyper-parameters left None made concrete for single texts or pairs (what a model folder
        keeps); ConfigError when they do not fit the data. The pipeline calls it before its first step."""
        if isinstance(cfg, PairOptions):
            if cfg.match is None:
                cfg = dataclasses.replace(cfg, match=pair)
            elif cfg.match and not pair:
                raise ConfigError(
                    "match marks the words a text shares with its pair, and this data has single texts: "
                    "remove match from the student's model settings or set it to false"
                )
        return cfg

    @property
    def matching(self) -> bool:
        """Whether the encoders see what the two texts of a pair share."""
        return bool(getattr(self.cfg, "match", False))

    def build_embeddings(self, emb_dim: int, dropout: float) -> None:
        """Token (+ position-aligned hashed bigram) embeddings for sequence students: emb, bigram, emb_drop,
        and with `match` one learned vector per shared state (char shared? bigram shared?), added."""
        self.emb = nn.Embedding(self.dims.vocab_size, emb_dim, padding_idx=0)
        self.bigram = nn.Embedding(self.dims.ngram_buckets, emb_dim, padding_idx=0) if self.dims.ngram_buckets else None
        # rows: 0 padding (zero, so a batch's padding width never changes a window), then 1 + shared state
        self.shared_emb = nn.Embedding(5, emb_dim, padding_idx=0) if self.matching else None
        init_embeddings(self.emb, self.bigram, self.shared_emb)
        self.emb_drop = nn.Dropout(dropout)

    def embed(self, ids: torch.Tensor, ngrams: torch.Tensor | None, shared: Shared | None = None) -> torch.Tensor:
        """ids [B, L] -> char (+ char-bigram) (+ shared-state) embeddings [B, L, E], dropout applied."""
        x = self.emb(ids)
        width = ids.size(1)
        if self.bigram is not None and ngrams is not None:
            x = x + self.bigram(aligned_ngrams(ngrams, width))
        if self.shared_emb is not None and shared is not None:
            state = 1 + shared[0].long()  # [B, L]: + 1 where the char occurs in the other text, + 2 for its bigram
            if self.bigram is not None and shared[1] is not None:
                # a bigram holding [UNK] (id 1) says nothing about what the texts share: not marked
                known = (ids > 1) & F.pad(ids[:, 1:] > 1, (0, 1))  # tokens t and t + 1 known
                state = state + 2 * (aligned_ngrams(shared[1].long(), width) * known)
            x = x + self.shared_emb(state * (ids != 0))
        return self.emb_drop(x)

    def build_head(self, dropout: float) -> None:
        width = self.out_dim * (4 if self.dims.pair else 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, self.dims.num_labels))

    @abc.abstractmethod
    def encode(
        self, ids: torch.Tensor, lengths: torch.Tensor, ngrams: torch.Tensor | None, shared: Shared | None = None
    ) -> torch.Tensor:
        """ids [B, L] (0 = padding), lengths [B], ngrams [B, G] or None, and for a matching pair student
        what this text shares with the other (see `shared_with`) -> [B, out_dim]."""

    def for_export(self) -> nn.Module:
        """The network as an ONNX export should trace it: the same logits from the same batch dict,
        in operations that run fast in onnxruntime. By default the network itself."""
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids_a, ngr_a = batch["ids_a"], batch.get("ngr_a")
        if not self.dims.pair:
            return self.head(self.encode(ids_a, batch["len_a"], ngr_a))  # [B, num_labels]
        ids_b, ngr_b = batch["ids_b"], batch.get("ngr_b")
        shared_a = shared_b = None
        if self.matching:
            (tok_a, tok_b), (ngr_in_a, ngr_in_b) = shared_both(ids_a, ids_b, 2), shared_both(ngr_a, ngr_b)
            shared_a, shared_b = (tok_a, ngr_in_a), (tok_b, ngr_in_b)
        u = self.encode(ids_a, batch["len_a"], ngr_a, shared_a)
        v = self.encode(ids_b, batch["len_b"], ngr_b, shared_b)
        return self.head(torch.cat([u, v, (u - v).abs(), u * v], dim=-1))  # [B, num_labels]


def shared_with(x: torch.Tensor | None, y: torch.Tensor | None, first_known: int = 1) -> torch.Tensor | None:
    """x [B, L], y [B, M] -> [B, L], True where x's id is at least `first_known` (token ids: 2, so that
    padding and [UNK] are never shared; n-gram ids: 1, padding only) and occurs in the same row of y."""
    return shared_both(x, y, first_known)[0]


def shared_both(x: torch.Tensor | None, y: torch.Tensor | None, first_known: int = 1) -> tuple:
    """(shared_with(x, y), shared_with(y, x)) from one comparison: B x L x M booleans (64 pairs of 1,000
    ids: 64 MB), reduced along each side; an ONNX export reduces them as bytes (ReduceMax), not as
    8-byte counts. (None, None) when either side is None."""
    if x is None or y is None:
        return None, None
    eq = x[:, :, None] == y[:, None, :]  # [B, L, M]
    if torch.jit.is_tracing():
        eq = eq.to(torch.uint8)
        hit_x, hit_y = eq.amax(2) > 0, eq.amax(1) > 0
    else:
        hit_x, hit_y = eq.any(2), eq.any(1)
    return hit_x & (x >= first_known), hit_y & (y >= first_known)


def weight_in(x: torch.Tensor, y: torch.Tensor, wy: torch.Tensor, first_known: int = 1) -> torch.Tensor:
    """x [B, L], y [B, M] with weights wy [B, M] -> [B, L]: the total weight of x's id among the same row
    of y (0 where y lacks it, or where x's id is below `first_known`, as in `shared_with`)."""
    eq = (x[:, :, None] == y[:, None, :]).to(wy.dtype)  # [B, L, M]
    return torch.bmm(eq, wy[:, :, None]).squeeze(-1) * (x >= first_known)


def weights_in_both(
    x: torch.Tensor, y: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor, first_known: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight_in(x, y, wy), weight_in(y, x, wx)) from one comparison."""
    eq = (x[:, :, None] == y[:, None, :]).to(wy.dtype)  # [B, L, M]
    in_y = torch.bmm(eq, wy[:, :, None]).squeeze(-1) * (x >= first_known)  # [B, L]
    in_x = torch.bmm(eq.transpose(1, 2), wx[:, :, None]).squeeze(-1) * (y >= first_known)  # [B, M]
    return in_y, in_x


def build_student(arch: str, params: dict, dims: Dims) -> Student:
    """Build the student `arch` with hyper-parameters `params` (validated against its dataclass)."""
    cls, cfg_cls = STUDENTS.get(arch)
    return cls(from_dict(cfg_cls, params, f"student.model ({arch})"), dims)


def init_embeddings(*tables: nn.Embedding | None, std: float = 0.1) -> None:
    """Small random embeddings (torch's default N(0, 1) makes max-pooled features huge and training
    erratic); padding rows stay zero."""
    with torch.no_grad():
        for t in tables:
            if t is not None:
                t.weight.normal_(0.0, std)
                if t.padding_idx is not None:
                    t.weight[t.padding_idx].zero_()


def aligned_ngrams(ngrams: torch.Tensor | None, width: int) -> torch.Tensor | None:
    """Position-aligned bigram ids [B, width] from the featurizer's [B, G] (G <= width - 1; 0 = none)."""
    if ngrams is None:
        return None
    if ngrams.size(1) >= width:
        return ngrams[:, :width]
    return torch.nn.functional.pad(ngrams, (0, width - ngrams.size(1)))


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over time of x [B, L, H] where mask [B, L] is True -> [B, H]."""
    return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def length_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]  # [B, L]
