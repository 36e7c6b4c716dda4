"""Bag of words (fastText-style): a weighted sum of token and hashed n-gram embeddings -> head.

Two forms. A linear bag (emb_dim 0), as the classical TF-IDF model: each token and n-gram has one
weight per label, weighted by its IDF (fitted on the training texts) and normalised to unit L2 norm
over the text's positions. For a pair, a linear bag reads what the two texts share and what they do
not (`match`): an n-gram both hold adds its `both` weights times the product of its weights on the
two sides, an n-gram one side lacks adds its `apart` weights times its own weight, each distinct
n-gram counted once (summed over all n-grams, the products are the cosine of the two binary TF-IDF
vectors); with `similarity` it also weighs how alike the two texts are as wholes, as a classical
matching model does: per table the cosine and the Jaccard overlap of their distinct ids, and the
difference of their lengths (a weight each, shared by every pair). With emb_dim > 0 each text is the
mean of emb_dim-wide embeddings, read by a (hidden layer and a) linear head; with `match` a second bag
holds only what the text does not share with its pair, beside the bag of all.
bench/RESULTS.md ("The BOW student") has the measurements behind the defaults.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, check_ranges, from_dict
from .base import Dims, PairOptions, Student, register_student, weight_in, weights_in_both

WEIGHTINGS = ("tfidf", "mean")
SIMILARITY_SCALE = 10.0


@dataclass
class BowConfig(PairOptions):
    emb_dim: int | None = None  # 0: a linear bag (one weight per label); None: 0 without a hidden layer, else 64
    hidden: int = 0  # 0: no hidden layer (a linear model on the bag, as fastText)
    dropout: float = 0.2  # on the bag vector; a linear bag has none (its bag already holds the logits)
    weighting: str | None = None  # "tfidf" or "mean"; None: "tfidf" for a linear bag, else "mean"
    # a linear pair bag: also weigh how alike the two texts are as wholes (per table the cosine and the
    # Jaccard overlap of their distinct tokens / n-grams, and their length difference); None: on there
    similarity: bool | None = None

    RANGES = {"emb_dim": (0, 65_536), "hidden": (0, 65_536), "dropout": (0, 1, "right-open")}

    def validate(self) -> None:
        check_ranges(self)
        if self.weighting is not None and self.weighting not in WEIGHTINGS:
            raise ConfigError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        if self.emb_dim == 0 and self.hidden:
            raise ConfigError("hidden needs emb_dim > 0: a linear bag (emb_dim 0) has no vector to feed a hidden layer")

    def resolved(self, pair: bool) -> "BowConfig":
        """The settings left None made concrete for single texts or pairs (what the model folder keeps):
        emb_dim 0 (a linear bag) without a hidden layer, else 64."""
        emb = self.emb_dim if self.emb_dim is not None else (64 if self.hidden else 0)
        if emb == 0 and pair and not (self.match is None or self.match):
            raise ConfigError(
                "a linear pair bag (emb_dim 0) compares two texts by the words they share, and match is false: "
                "remove match from the student's model settings (it is on for pairs), or set emb_dim above 0, e.g. 64"
            )
        weighting = self.weighting or ("tfidf" if emb == 0 else "mean")
        linear_pair = emb == 0 and pair
        if self.similarity and not linear_pair:
            raise ConfigError(
                "similarity compares the two texts of a pair in a linear bag (emb_dim 0), and "
                + ("this data has single texts" if not pair else f"emb_dim is {emb}")
                + (" (the default with a hidden layer)" if pair and self.emb_dim is None else "")
                + ": remove similarity from the student's model settings"
            )
        similarity = linear_pair if self.similarity is None else self.similarity
        return dataclasses.replace(self, emb_dim=emb, weighting=weighting, similarity=similarity)


@register_student("bow", BowConfig)
class BOW(Student):
    default_features = {"max_len": 512, "ngrams": [2, 3]}  # hashed char bigrams and trigrams (fastText-style)

    @classmethod
    def default_buckets(cls, params: dict, pair: bool) -> int:
        # a linear bag has num_labels numbers per bucket: 1M buckets keep n-grams apart at little cost
        return 1_000_000 if cls.linear(params) else 100_000

    @classmethod
    def linear(cls, params: dict) -> bool:
        try:
            cfg = from_dict(BowConfig, params, "student.model (bow)")
        except ConfigError:
            return False  # the model's own check names the problem when it is built
        return cfg.emb_dim == 0 or (cfg.emb_dim is None and not cfg.hidden)  # as resolved() makes it

    @classmethod
    def resolved_config(cls, cfg: BowConfig, pair: bool) -> BowConfig:
        return super().resolved_config(cfg.resolved(pair), pair)

    def __init__(self, cfg: BowConfig, dims: Dims) -> None:
        super().__init__(cfg, dims)
        cfg = self.cfg
        width = cfg.emb_dim or dims.num_labels  # a linear bag's tables hold logits
        self.tok = nn.EmbeddingBag(dims.vocab_size, width, mode="sum", padding_idx=0)
        self.ngr = nn.EmbeddingBag(dims.ngram_buckets, width, mode="sum", padding_idx=0) if dims.ngram_buckets else None
        self.linear_pair = cfg.emb_dim == 0 and dims.pair
        if self.linear_pair:  # tok and ngr weigh what one side holds alone; these, what both hold
            self.tok_both = nn.EmbeddingBag(dims.vocab_size, width, mode="sum", padding_idx=0)
            self.ngr_both = (
                nn.EmbeddingBag(dims.ngram_buckets, width, mode="sum", padding_idx=0) if dims.ngram_buckets else None
            )
        if cfg.similarity:  # [cosine, Jaccard] per table, then the length difference -> logits
            self.similar = nn.Linear(2 * (1 + bool(dims.ngram_buckets)) + 1, dims.num_labels, bias=False)
        if cfg.weighting == "tfidf":
            # IDF per token id and per n-gram bucket (fit_idf); saved with the weights
            self.register_buffer("idf_tok", torch.ones(dims.vocab_size))
            self.register_buffer("idf_ngr", torch.ones(dims.ngram_buckets) if self.ngr is not None else None)
        if cfg.emb_dim == 0:
            with torch.no_grad():  # n-grams never seen in training add nothing (no random noise at test time)
                for t in (self.tok, self.ngr, getattr(self, "tok_both", None), getattr(self, "ngr_both", None)):
                    if t is not None:
                        t.weight.zero_()
                if cfg.similarity:
                    self.similar.weight.zero_()
            self.mlp = nn.Identity()
            self.out_dim = dims.num_labels
            self.head = Bias(dims.num_labels)
        else:
            bag_dim = cfg.emb_dim * (2 if self.matching else 1)  # [all | not shared]
            self.mlp = nn.Sequential(nn.Linear(bag_dim, cfg.hidden), nn.Tanh()) if cfg.hidden else nn.Identity()
            self.out_dim = cfg.hidden or bag_dim
            self.build_head(cfg.dropout)

    def fit_idf(self, sides) -> None:
        """IDF = ln((1 + N) / (1 + df)) + 1 (scikit-learn's smoothed form) of every token id and n-gram
        bucket, from `sides`: an iterable of (ids [B, L], ngrams [B, G] or None) batches of training
        texts (each row one document; pairs give both sides)."""
        if self.cfg.weighting != "tfidf":
            return
        df_tok = np.zeros(self.dims.vocab_size)
        df_ngr = np.zeros(self.dims.ngram_buckets) if self.ngr is not None else None
        n = 0
        for ids, ngrams in sides:
            n += len(ids)
            _count_docs(df_tok, ids)
            if df_ngr is not None and ngrams is not None:
                _count_docs(df_ngr, ngrams)
        with torch.no_grad():
            self.idf_tok.copy_(torch.from_numpy(np.log((1 + n) / (1 + df_tok)) + 1))
            if df_ngr is not None:
                self.idf_ngr.copy_(torch.from_numpy(np.log((1 + n) / (1 + df_ngr)) + 1))

    def encode(self, ids, lengths, ngrams, shared=None):
        use_ngr = self.ngr is not None and ngrams is not None
        if shared is not None:
            return self._encode_matched(ids, lengths, ngrams if use_ngr else None, shared)
        if (
            self.cfg.weighting == "tfidf"
            and not self.training
            and not torch.is_grad_enabled()
            and not torch.jit.is_tracing()
        ):
            # prediction: one embedding bag per table gives both sums (see _scored_tables)
            tok, ngr = self._scored_tables()
            both = F.embedding_bag(ids, tok, mode="sum")  # [B, width + 1]; row 0 is zero: padding adds nothing
            if use_ngr:
                both = both + F.embedding_bag(ngrams, ngr, mode="sum")
            return self.mlp(both[:, :-1] / both[:, -1:].clamp(min=1e-12).sqrt())
        if self.cfg.weighting == "tfidf":
            w = self.idf_tok[ids] * (ids != 0)  # [B, L]
            total = bag_sum(self.tok, ids, w)
            sq = (w * w).sum(1)
            if use_ngr:
                wn = self.idf_ngr[ngrams] * (ngrams != 0)  # [B, G]
                total = total + bag_sum(self.ngr, ngrams, wn)
                sq = sq + (wn * wn).sum(1)
            return self.mlp(total / sq.clamp(min=1e-12).sqrt()[:, None])  # unit L2 norm over positions
        total = bag_sum(self.tok, ids)  # [B, E] sum over tokens
        count = lengths.clamp(min=1).to(total.dtype)
        if use_ngr:
            total = total + bag_sum(self.ngr, ngrams)
            count = count + (ngrams != 0).sum(1).to(total.dtype)
        return self.mlp(total / count[:, None])  # [B, out_dim]

    def _encode_matched(self, ids, lengths, ngrams, shared) -> torch.Tensor:
        """[bag of all | bag of what is not shared with the pair] -> [B, out_dim]; both bags weighted
        and normalised as the bag of all is, so the second one's size says how much is not shared."""
        tfidf = self.cfg.weighting == "tfidf"
        w = self.idf_tok[ids] * (ids != 0) if tfidf else (ids != 0).to(self.tok.weight.dtype)  # [B, L]
        total, apart = bag_sum(self.tok, ids, w), bag_sum(self.tok, ids, w * ~shared[0])
        norm = (w * w).sum(1) if tfidf else lengths.clamp(min=1).to(total.dtype)
        if ngrams is not None:
            wn = self.idf_ngr[ngrams] * (ngrams != 0) if tfidf else (ngrams != 0).to(total.dtype)  # [B, G]
            total = total + bag_sum(self.ngr, ngrams, wn)
            apart = apart + bag_sum(self.ngr, ngrams, wn * ~shared[1])
            norm = norm + ((wn * wn).sum(1) if tfidf else (ngrams != 0).sum(1).to(total.dtype))
        norm = norm.clamp(min=1e-12).sqrt() if tfidf else norm
        return self.mlp(torch.cat([total, apart], dim=-1) / norm[:, None])

    def _distinct_tables(self, ids: torch.Tensor, ngrams: torch.Tensor | None) -> list["Distinct | None"]:
        """Per table (tokens, n-grams; None where absent) the distinct-id view of each text (`Distinct`):
        a repeated id's weight is split over its positions, so the weights of one id sum to the same
        whether the text holds it once or ten times. ids [B, L], ngrams [B, G] or None."""
        tfidf = self.cfg.weighting == "tfidf"
        dtype = self.tok.weight.dtype
        tables = []
        for x, idf in ((ids, getattr(self, "idf_tok", None)), (ngrams, getattr(self, "idf_ngr", None))):
            if x is None:
                tables.append(None)
                continue
            real = (x != 0).to(dtype)
            copies = weight_in(x, x, real).clamp(min=1.0)  # [B, L]: how often the position's id occurs in its text
            base = idf[x] * real if tfidf else real  # a 0/1 real is its own square: mean's sq is the count
            sq, once = base * base / copies, real / copies
            tables.append(Distinct(base / copies, sq, once, sq.sum(1), once.sum(1)))
        return tables

    def _normalised(self, tables: list["Distinct | None"]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each position's weight in its text's vector over distinct tokens and n-grams: tfidf: IDF / the
        L2 norm of the distinct IDFs; mean: 1 / the number of distinct ones; so the products of two
        texts' weights sum to the cosine of their (binary) TF-IDF vectors, at most 1. -> ([B, L], [B, G]
        or None), padding 0."""
        norm = 0.0
        for t in tables:
            if t is not None:
                norm = norm + t.sq_total
        norm = (norm.clamp(min=1e-12).sqrt() if self.cfg.weighting == "tfidf" else norm.clamp(min=1.0))[:, None]
        tok, ngr = tables
        return tok.weight / norm, (ngr.weight / norm if ngr is not None else None)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.linear_pair:
            return super().forward(batch)
        # a linear pair bag: logits [B, C] = bias + sum over distinct n-grams g held by both of
        # both[g] w_a(g) w_b(g) + sum over those one side holds alone of apart[g] w(g); the same for (a, b)
        # and (b, a)
        ids_a, ids_b = batch["ids_a"], batch["ids_b"]
        ngr_a, ngr_b = batch.get("ngr_a"), batch.get("ngr_b")
        if self.ngr is None:
            ngr_a = ngr_b = None
        dist_a, dist_b = self._distinct_tables(ids_a, ngr_a), self._distinct_tables(ids_b, ngr_b)
        (wa, wna), (wb, wnb) = self._normalised(dist_a), self._normalised(dist_b)
        logits = 0.0
        alike = []  # [B] each: cosine and Jaccard overlap per table
        sides = [(self.tok, self.tok_both, ids_a, ids_b, wa, wb, 2, 0)]  # tokens: padding and [UNK] never shared
        if ngr_a is not None and ngr_b is not None:
            sides.append((self.ngr, self.ngr_both, ngr_a, ngr_b, wna, wnb, 1, 1))
        for apart, both, xa, xb, w_a, w_b, first_known, t in sides:
            in_b, in_a = weights_in_both(xa, xb, w_a, w_b, first_known)  # [B, L], [B, M]: the weight in the other
            logits = logits + bag_sum(both, xa, w_a * in_b)  # each (a, b) position pair counted once
            logits = logits + bag_sum(apart, xa, w_a * (in_b == 0)) + bag_sum(apart, xb, w_b * (in_a == 0))
            if self.cfg.similarity:
                alike += _alike(dist_a[t], dist_b[t], in_b > 0)
        if self.cfg.similarity:
            len_a, len_b = (ids_a != 0).sum(1).to(wa.dtype), (ids_b != 0).sum(1).to(wa.dtype)  # [B] tokens
            alike.append((len_a - len_b).abs() / torch.maximum(len_a, len_b).clamp(min=1.0))
            # [B, 2 tables + 1] -> [B, C]; scaled so that Adam, whose steps are about lr whatever the
            # gradient, moves these few weights every batch shares SIMILARITY_SCALE times faster than the
            # tables': a fitted linear model gives them weights a few epochs at the bag's lr cannot reach
            logits = logits + self.similar(torch.stack(alike, 1) * SIMILARITY_SCALE)
        return self.head(logits)

    def linear_tables(self) -> list[tuple[str, int]]:
        """A linear bag's weights as one matrix W [D, C] (what `linear_design` indexes): per block its
        parameter name and row count, in order; the bias is apart (head.bias)."""
        if self.cfg.emb_dim != 0:
            raise ValueError("linear_tables: only a linear bag (emb_dim 0) is linear in its weights")
        names = ["tok", "ngr"] + (["tok_both", "ngr_both"] if self.linear_pair else [])
        blocks = [(f"{n}.weight", getattr(self, n).weight.shape[0]) for n in names if getattr(self, n) is not None]
        if self.cfg.similarity:
            blocks.append(("similar.weight", self.similar.weight.shape[1]))
        return blocks

    def set_linear(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Load W [D, C] (blocks as `linear_tables`) and the bias [C] into the tables."""
        params = dict(self.named_parameters())
        with torch.no_grad():
            start = 0
            for name, rows in self.linear_tables():
                block = weight[start : start + rows]
                params[name].copy_(block.T if name == "similar.weight" else block)  # nn.Linear keeps [C, k]
                start += rows
            self.head.bias.copy_(bias)

    @torch.no_grad()
    def linear_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """W [D, C] and the bias [C] as `set_linear` takes them (copies)."""
        params = dict(self.named_parameters())
        blocks = [params[n].T if n == "similar.weight" else params[n] for n, _ in self.linear_tables()]
        return torch.cat(blocks).clone(), self.head.bias.clone()

    @torch.no_grad()
    def linear_design(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A linear bag's inputs as a sparse matrix X in COO form (row, column, value), with
        logits = X W + bias for W [D, C] laid out as `linear_tables`; repeated (row, column) entries
        add up. What a full-batch solver fits (solve.py); forward computes the same logits."""
        blocks = dict(self.linear_tables())
        offset, start = {}, 0
        for name, rows in blocks.items():
            offset[name.split(".")[0]] = start
            start += rows
        parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

        def add(x: torch.Tensor, values: torch.Tensor, table: str) -> None:
            real = x != 0  # [B, L]
            rows = torch.arange(len(x))[:, None].expand_as(x)
            parts.append((rows[real], x[real] + offset[table], values[real]))

        ids_a, ngr_a = batch["ids_a"], batch.get("ngr_a") if self.ngr is not None else None
        if not self.linear_pair:
            if self.cfg.weighting == "tfidf":
                w = self.idf_tok[ids_a] * (ids_a != 0)  # [B, L]
                norm = (w * w).sum(1)
                wn = self.idf_ngr[ngr_a] * (ngr_a != 0) if ngr_a is not None else None  # [B, G]
                norm = (norm + (wn * wn).sum(1) if wn is not None else norm).clamp(min=1e-12).sqrt()
            else:
                w = (ids_a != 0).to(self.tok.weight.dtype)
                wn = (ngr_a != 0).to(w.dtype) if ngr_a is not None else None
                norm = batch["len_a"].clamp(min=1).to(w.dtype) + (wn.sum(1) if wn is not None else 0)
            add(ids_a, w / norm[:, None], "tok")
            if wn is not None:
                add(ngr_a, wn / norm[:, None], "ngr")
        else:
            ids_b, ngr_b = batch["ids_b"], batch.get("ngr_b") if self.ngr is not None else None
            dist_a, dist_b = self._distinct_tables(ids_a, ngr_a), self._distinct_tables(ids_b, ngr_b)
            (wa, wna), (wb, wnb) = self._normalised(dist_a), self._normalised(dist_b)
            sides = [("tok", ids_a, ids_b, wa, wb, 2, 0)]
            if ngr_a is not None and ngr_b is not None:
                sides.append(("ngr", ngr_a, ngr_b, wna, wnb, 1, 1))
            alike = []
            for table, xa, xb, w_a, w_b, first_known, t in sides:  # as forward
                in_b, in_a = weights_in_both(xa, xb, w_a, w_b, first_known)
                add(xa, w_a * in_b, f"{table}_both")
                add(xa, w_a * (in_b == 0), table)
                add(xb, w_b * (in_a == 0), table)
                if self.cfg.similarity:
                    alike += _alike(dist_a[t], dist_b[t], in_b > 0)
            if self.cfg.similarity:
                len_a, len_b = (ids_a != 0).sum(1).to(wa.dtype), (ids_b != 0).sum(1).to(wa.dtype)
                alike.append((len_a - len_b).abs() / torch.maximum(len_a, len_b).clamp(min=1.0))
                values = torch.stack(alike, 1) * SIMILARITY_SCALE  # [B, k]
                rows = torch.arange(len(ids_a))[:, None].expand_as(values)
                cols = offset["similar"] + torch.arange(values.shape[1]).expand_as(values)
                parts.append((rows.reshape(-1), cols.reshape(-1), values.reshape(-1)))
        return tuple(torch.cat(p) for p in zip(*parts))

    def _scored_tables(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per table [rows, width + 1]: the embeddings times their IDF, and IDF^2 as the last column, row 0
        (padding) zero. Summed over a text they give the weighted bag and its squared norm in one
        embedding bag, ~5x faster than weighting per position (measured). Built in eval mode and kept
        while the same tensors hold the same version: going back to training drops them (a fused
        optimiser step changes weights without bumping their version), and so does replacing a tensor
        (load_state_dict(assign=True), torch.func.functional_call) or copying into it. Changes made
        through `.data` are not seen: switch the module to train() and back after such surgery."""
        tensors = [self.tok.weight, self.idf_tok]
        if self.ngr is not None:
            tensors += [self.ngr.weight, self.idf_ngr]
        key = getattr(self, "_scored_key", None)
        if key is None or any(ref() is not t or v != t._version for (ref, v), t in zip(key, tensors)):
            self._scored = (
                _scored(self.tok.weight, self.idf_tok),
                _scored(self.ngr.weight, self.idf_ngr) if self.ngr is not None else None,
            )
            # weak references: a new tensor at a freed one's address (and version 0) is not taken for it
            self._scored_key = [(weakref.ref(t), t._version) for t in tensors]
        return self._scored

    def train(self, mode: bool = True) -> "BOW":
        self._scored_key = None  # weights may change while training: build the prediction tables again
        return super().train(mode)

    def for_export(self) -> nn.Module:
        """Without a hidden layer a single-text BOW is linear, so its head folds into the embedding
        tables (FoldedBow): onnxruntime then gathers num_labels numbers per token instead of emb_dim
        (~10x faster batches; its Gather has no embedding-bag kernel)."""
        return FoldedBow(self) if not self.cfg.hidden and not self.dims.pair else self


class Distinct(NamedTuple):
    """One table of a text seen as its distinct ids, per position [B, L] (0 at padding), each summing
    over a text to one value per distinct id: `weight` its base weight (IDF, or 1 for mean) over the
    copies of its id in the text, `sq` the squared base weight over the copies, `once` 1 over them;
    and per text [B] the sums of `sq` and `once` (the squared norm and the number of distinct ids)."""

    weight: torch.Tensor
    sq: torch.Tensor
    once: torch.Tensor
    sq_total: torch.Tensor
    count: torch.Tensor


def _alike(a: Distinct, b: Distinct, shared_a: torch.Tensor) -> list[torch.Tensor]:
    """[cosine, Jaccard overlap] [B] each of two texts' binary TF-IDF vectors over one table; shared_a
    [B, L] marks the positions of a whose id b holds."""
    shared = shared_a.to(a.weight.dtype)
    both_sq, both_count = (shared * a.sq).sum(1), (shared * a.once).sum(1)  # over the distinct shared ids
    cosine = both_sq / (a.sq_total * b.sq_total).clamp(min=1e-12).sqrt()
    jaccard = both_count / (a.count + b.count - both_count).clamp(min=1.0)
    return [cosine, jaccard]


class Bias(nn.Module):
    """A linear bag's head: the logits [B, C] plus a learned bias."""

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


def _count_docs(df: np.ndarray, ids: np.ndarray) -> None:
    """Add 1 to df[i] for every distinct non-zero id i of each row of ids [B, L]."""
    s = np.sort(np.asarray(ids), axis=1)
    first = np.ones_like(s, dtype=bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    np.add.at(df, s[first & (s != 0)], 1)


class FoldedBow(nn.Module):
    """A single-text BOW without hidden layer with its head folded in: logits = b + sum_t T[t] w_t,
    T = E W^T per table (row 0, padding, zero; a linear bag's tables are T already), w_t = 1 / count
    (mean) or idf_t / sqrt(sum idf^2) (tfidf: the tables carry T idf and idf^2, as BOW's prediction
    tables do, so one gather per table gives both sums). Same logits as BOW.forward up to float rounding."""

    def __init__(self, bow: BOW) -> None:
        super().__init__()
        head = bow.head if isinstance(bow.head, Bias) else bow.head[-1]
        weight = head.weight if isinstance(head, nn.Linear) else None
        self.tfidf = bow.cfg.weighting == "tfidf"
        with torch.no_grad():
            tok = _folded(bow.tok.weight, weight)
            ngr = _folded(bow.ngr.weight, weight) if bow.ngr is not None else None
            if self.tfidf:
                tok = _scored(tok, bow.idf_tok)
                ngr = _scored(ngr, bow.idf_ngr) if ngr is not None else None
            self.register_buffer("tok_table", tok)
            self.register_buffer("ngr_table", ngr)
            self.register_buffer("bias", head.bias.detach().clone())

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, ngrams = batch["ids_a"], batch.get("ngr_a")
        use_ngr = self.ngr_table is not None and ngrams is not None
        total = F.embedding(ids, self.tok_table).sum(1)  # [B, C] ([B, C + 1] for tfidf); row 0 is zero
        if use_ngr:
            total = total + F.embedding(ngrams, self.ngr_table).sum(1)
        if self.tfidf:
            return total[:, :-1] / total[:, -1:].clamp(min=1e-12).sqrt() + self.bias
        count = batch["len_a"].clamp(min=1).to(total.dtype)
        if use_ngr:
            count = count + (ngrams != 0).sum(1).to(total.dtype)
        return total / count[:, None] + self.bias


def _scored(emb: torch.Tensor, idf: torch.Tensor) -> torch.Tensor:
    """[rows, width + 1]: the embeddings times their IDF, then IDF^2; row 0 (padding) zero."""
    table = torch.cat([emb.detach() * idf[:, None], (idf * idf)[:, None]], 1)
    table[0] = 0.0
    return table


def _folded(emb: torch.Tensor, head: torch.Tensor | None) -> torch.Tensor:
    table = emb.detach() @ head.detach().T if head is not None else emb.detach().clone()  # [V, C]
    table[0] = 0.0  # padding adds nothing (the bag weights it by 0)
    return table


def bag_sum(bag: nn.EmbeddingBag, ids: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of the embeddings of the non-zero ids of each row, each times its weight (default 1):
    ids [B, L] (0 = padding), weights [B, L] -> [B, E].

    Same result and gradients as `bag(ids)` with padding_idx 0, but passes only the real ids with
    offsets: embedding_bag given a padding_idx takes a slow path (25x slower on CPU, measured).
    """
    mask = ids != 0
    w = mask.to(bag.weight.dtype) if weights is None else weights * mask
    if torch.jit.is_tracing():
        # An ONNX export traces the network; ONNX has no embedding bag (the exporter's per-row Loop runs
        # ~10x slower in onnxruntime): gather, weight, sum.
        return (F.embedding(ids, bag.weight) * w.unsqueeze(-1)).sum(1)
    if not torch.is_grad_enabled():
        # Prediction and dev evaluation: weighting padding by 0 inside the kernel skips the masked copy
        # (~2.5x faster on CPU, measured) with the same sums; training keeps the masked path, whose
        # gradients add up in the order every trained model so far was made with.
        return F.embedding_bag(ids, bag.weight, mode="sum", per_sample_weights=w)
    counts = mask.sum(1)
    offsets = torch.cumsum(counts, 0) - counts
    if weights is None:
        return F.embedding_bag(ids[mask], bag.weight, offsets, mode="sum")
    return F.embedding_bag(ids[mask], bag.weight, offsets, mode="sum", per_sample_weights=weights[mask])
