"""Step 1: make many new unlabelled texts from the labelled ones (ERNIE's data-distillation recipe).

Three strategies, on tokens (words for `jieba`):
  unk   - each token becomes `[UNK]` with probability p_unk;
  pos   - each token is, with probability p_pos, replaced by a token of the same part of speech drawn
          from the data set's tokens of that POS, weighted by frequency;
  ngram - with probability p_ng the example becomes one random contiguous span of random length m,
          1 <= m <= min(length, ngram_max).
unk and pos share one uniform draw per token (u < p_unk -> unk, p_unk <= u < p_unk + p_pos -> pos),
so a token is never both. Each source is tagged once; generation is vectorised with numpy and seeded
per source (`seed`, source index), so output is byte-identical run to run.

Output TSV columns: text_a [text_b] tokens_a [tokens_b] strategy source
  text_*   the augmented text, tokens joined back (`[UNK]` written literally: a teacher puts its own
           unknown token there), tokens_* the same tokens joined by one space (what the student sees),
  strategy the strategies that changed this example ('unk+pos+ngram'), source the source's line number.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
import numpy as np

from .config import ConfigError, check_ranges
from .data.io import Example, ExampleReader, ExampleWriter, atomic_write, check_output
from .errors import DataError
from .log import Progress, logger
from .registry import unknown_name_message
from .text.tokenize import TOKENIZERS, get_tokenizer
from .text.vocab import UNK

log = logger.getChild("augment")
STRATEGIES = ("unk", "pos", "ngram")  # in the order they are applied and written


@dataclass
class AugmentConfig:
    """Augmentation settings; set a probability to 0 to switch its strategy off."""

    n_iter: int = 10
    p_unk: float = 0.1
    p_pos: float = 0.1
    p_ng: float = 0.25
    ngram_max: int | None = None
    seed: int = 1
    tokenizer: str = "jieba"
    workers: int = 1  # processes for POS tagging (the slow part)

    RANGES = {"n_iter": (1, 10_000), "seed": (0, 2**32 - 1)}

    def validate(self) -> None:
        for name in ("p_unk", "p_pos", "p_ng"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {p}")
        if self.p_unk + self.p_pos > 1.0:
            raise ConfigError(f"p_unk + p_pos must be at most 1 (one draw per token), got {self.p_unk + self.p_pos}")
        check_ranges(self)
        if self.ngram_max is not None and self.ngram_max < 1:
            raise ConfigError(f"ngram_max must be at least 1 or null, got {self.ngram_max}")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if self.tokenizer not in TOKENIZERS:
            raise ConfigError(unknown_name_message("tokenizer", self.tokenizer, TOKENIZERS.names()))


@dataclass
class AugmentStats:
    sources: int = 0
    written: int = 0
    dup_source: int = 0
    dup_output: int = 0
    strategies: Counter = field(default_factory=Counter)
    tag_seconds: float = 0.0
    gen_seconds: float = 0.0

    def summary(self) -> str:
        per = ", ".join(f"{k} {self.strategies.get(k, 0)}" for k in sorted(STRATEGIES))
        rate = self.written / self.gen_seconds if self.gen_seconds else float("inf")
        return (
            f"sources read {self.sources}, examples written {self.written}, duplicates dropped "
            f"{self.dup_source + self.dup_output} (same as a source {self.dup_source}, repeated "
            f"{self.dup_output}); examples changed by: {per}; tagging {self.tag_seconds:.1f}s, "
            f"generation {self.gen_seconds:.1f}s ({rate:,.0f} examples/s)"
        )


class TokenTable:
    """Token and POS ids for the whole data set, and the frequency-weighted same-POS sampler.

    The sampler is one sorted array: for POS p its entries are p + (cumulative share of each token
    within p), so `searchsorted(cum, pos_ids + u)` draws for many positions of any POS in one call.
    """

    def __init__(self) -> None:
        self.itos: list[str] = [UNK]
        self.stoi: dict[str, int] = {UNK: 0}
        self.pos_itos: list[str] = []
        self.pos_stoi: dict[str, int] = {}
        self.pair_counts: Counter[tuple[int, int]] = Counter()

    def add(self, tagged: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.empty(len(tagged), dtype=np.int64)
        pos = np.empty(len(tagged), dtype=np.int64)
        for i, (tok, tag) in enumerate(tagged):
            t = self.stoi.get(tok)
            if t is None:
                t = self.stoi[tok] = len(self.itos)
                self.itos.append(tok)
            p = self.pos_stoi.get(tag)
            if p is None:
                p = self.pos_stoi[tag] = len(self.pos_itos)
                self.pos_itos.append(tag)
            ids[i], pos[i] = t, p
            self.pair_counts[(p, t)] += 1
        return ids, pos

    def freeze(self) -> None:
        pairs = sorted(self.pair_counts.items())  # by POS id, then token id: deterministic
        pos_of = np.array([p for (p, _), _ in pairs], dtype=np.int64)
        self.sample_ids = np.array([t for (_, t), _ in pairs], dtype=np.int64)
        counts = np.array([c for _, c in pairs], dtype=np.float64)
        cum = np.empty_like(counts)
        for p in range(len(self.pos_itos)):
            sel = pos_of == p
            c = np.cumsum(counts[sel])
            cum[sel] = p + c / c[-1]
        self.cum = cum

    def sample_same_pos(self, pos_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(len(pos_ids))
        idx = np.searchsorted(self.cum, pos_ids + u, side="right")
        return self.sample_ids[np.minimum(idx, len(self.cum) - 1)]


def _edit(
    ids: np.ndarray, pos: np.ndarray, table: TokenTable, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The token edits of `cfg.n_iter` variants: (ids [n_iter, L], [UNK] mask, same-POS mask)."""
    n, L = cfg.n_iter, len(ids)
    u = rng.random((n, L))  # [n_iter, L] one draw per token
    out = np.broadcast_to(ids, (n, L)).copy()  # [n_iter, L]
    unk = u < cfg.p_unk
    rep = (u >= cfg.p_unk) & (u < cfg.p_unk + cfg.p_pos)
    if rep.any():
        cols = np.nonzero(rep)[1]
        out[rep] = table.sample_same_pos(pos[cols], rng)
    out[unk] = 0
    return out, unk, rep


def _spans(L: int, cfg: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per variant: whether n-gram sampling applies, the span's length and start."""
    use_ng = rng.random(cfg.n_iter) < cfg.p_ng
    m = rng.integers(1, min(L, cfg.ngram_max or L) + 1, size=cfg.n_iter)
    start = rng.integers(0, L - m + 1)
    return use_ng, m, start


def _variants(ids, out, unk, rep, spans) -> list[tuple[np.ndarray, tuple[str, ...]]]:
    use_ng, m, start = spans
    L = len(ids)
    changed_pos = (out != ids) & rep
    result = []
    for i in range(len(out)):
        row, used = out[i], []
        if unk[i].any():
            used.append("unk")
        if changed_pos[i].any():
            used.append("pos")
        if use_ng[i] and m[i] < L:
            row = row[start[i] : start[i] + m[i]]
            used.append("ngram")
        result.append((row, tuple(used)))
    return result


def generate(
    ids: np.ndarray, pos: np.ndarray, table: TokenTable, cfg: AugmentConfig, rng: np.random.Generator
) -> list[tuple[np.ndarray, tuple[str, ...]]]:
    """`cfg.n_iter` variants of one token sequence: (token ids, strategies that changed it)."""
    if len(ids) == 0:
        return []
    out, unk, rep = _edit(ids, pos, table, cfg, rng)
    return _variants(ids, out, unk, rep, _spans(len(ids), cfg, rng))


def generate_pair(ea, eb, table: TokenTable, cfg: AugmentConfig, rng: np.random.Generator):
    """Variants of a pair whose sides change alike: a token both sides hold gets, in side b, the edit
    it got in side a (the same [UNK], the same same-POS replacement, or none), so that two questions
    that matched still share their words; n-gram sampling cuts at most one side, chosen at random."""
    (ids_a, pos_a), (ids_b, pos_b) = ea, eb
    if len(ids_a) == 0 or len(ids_b) == 0:
        return [], []
    out_a, unk_a, rep_a = _edit(ids_a, pos_a, table, cfg, rng)
    out_b, unk_b, rep_b = _edit(ids_b, pos_b, table, cfg, rng)
    first = {}
    for k, t in enumerate(ids_a.tolist()):
        first.setdefault(t, k)
    shared = [(j, first[t]) for j, t in enumerate(ids_b.tolist()) if t in first]
    if shared:
        jb, ka = np.array(shared).T
        out_b[:, jb], unk_b[:, jb], rep_b[:, jb] = out_a[:, ka], unk_a[:, ka], rep_a[:, ka]
    use_a, m_a, s_a = _spans(len(ids_a), cfg, rng)
    _, m_b, s_b = _spans(len(ids_b), cfg, rng)
    cut_a = rng.random(cfg.n_iter) < 0.5  # the side n-gram sampling cuts, when it applies
    va = _variants(ids_a, out_a, unk_a, rep_a, (use_a & cut_a, m_a, s_a))
    vb = _variants(ids_b, out_b, unk_b, rep_b, (use_a & ~cut_a, m_b, s_b))
    return va, vb


def _tag_one(args: tuple[str, str, str | None]) -> tuple[list, list | None]:
    name, a, b = args
    tok = get_tokenizer(name)
    return tok.tag(a), (tok.tag(b) if b is not None else None)


def _tagged(examples: list[Example], cfg: AugmentConfig, progress: bool):
    jobs = [(cfg.tokenizer, ex.text_a, ex.text_b) for ex in examples]
    bar = Progress(len(jobs), "augment: tagging", "text", progress, log=log)
    if cfg.workers > 1:
        get_tokenizer(cfg.tokenizer).tag("预热")  # load the dictionary once before forking
        with get_context("fork").Pool(cfg.workers) as pool:
            for item in pool.imap(_tag_one, jobs, chunksize=64):
                bar.update()
                yield item
    else:
        for item in map(_tag_one, jobs):
            bar.update()
            yield item
    bar.close()


def _key(tokens_a: list[str], tokens_b: list[str] | None) -> bytes:
    text = " ".join(tokens_a) if tokens_b is None else " ".join(tokens_a) + "\t" + " ".join(tokens_b)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()


def augment_examples(
    examples: list[Example], cfg: AugmentConfig, out_path: str | Path, progress: bool = True
) -> AugmentStats:
    """Tag every source once, then write `n_iter` variants of each (duplicates dropped) to `out_path`."""
    stats = AugmentStats(sources=len(examples))
    tokenizer = get_tokenizer(cfg.tokenizer)
    pairs = any(ex.text_b is not None for ex in examples)
    table = TokenTable()
    seen: set[bytes] = set()
    t0 = time.perf_counter()
    encoded = []
    for ta, tb in _tagged(examples, cfg, progress):
        ea = table.add(ta)
        eb = table.add(tb) if tb is not None else None
        encoded.append((ea, eb))
        seen.add(_key([t for t, _ in ta], [t for t, _ in tb] if tb is not None else None))
    table.freeze()
    stats.tag_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    itos = np.array(table.itos, dtype=object)
    cols = (
        ["text_a"]
        + (["text_b"] if pairs else [])
        + ["tokens_a"]
        + (["tokens_b"] if pairs else [])
        + ["strategy", "source"]
    )
    bar = Progress(len(examples), "augment: generating", "source", progress, log=log)
    with atomic_write(out_path) as f:
        writer = ExampleWriter(f, cols)
        for i, (ex, (ea, eb)) in enumerate(zip(examples, encoded)):
            bar.update()
            rng = np.random.default_rng([cfg.seed, i])
            if eb is None:
                va = generate(ea[0], ea[1], table, cfg, rng)
                vb = [None] * len(va)
            else:
                va, vb = generate_pair(ea, eb, table, cfg, rng)
            for (row_a, used_a), b in zip(va, vb):
                toks_a = itos[row_a].tolist()
                toks_b = itos[b[0]].tolist() if b is not None else None
                used = set(used_a) | (set(b[1]) if b is not None else set())
                if not used:
                    stats.dup_source += 1
                    continue
                key = _key(toks_a, toks_b)
                if key in seen:
                    stats.dup_output += 1
                    continue
                seen.add(key)
                writer.write(
                    {
                        "text_a": tokenizer.detokenize(toks_a),
                        "text_b": tokenizer.detokenize(toks_b) if toks_b else "",
                        "tokens_a": toks_a,
                        "tokens_b": toks_b or "",
                        "strategy": "+".join(s for s in STRATEGIES if s in used),
                        "source": ex.line,
                    }
                )
                stats.written += 1
                stats.strategies.update(used)
    bar.close()
    stats.gen_seconds = time.perf_counter() - t0
    return stats


def augment_file(
    input_path: str | Path,
    output_path: str | Path,
    cfg: AugmentConfig,
    label_column: str = "label",
    skip_bad_lines: bool = False,
    progress: bool = True,
) -> AugmentStats:
    """Read labelled (or plain) texts from `input_path` and write augmented unlabelled texts."""
    reader = ExampleReader(input_path, require_label=False, label_column=label_column, skip_bad_lines=skip_bad_lines)
    from .datasets import resolve

    if Path(output_path).resolve() == resolve(input_path).resolve():
        raise DataError(f"{output_path}: is the input file; augmentation would overwrite it (choose another --output)")
    from .lock import exclusive

    check_output(output_path, "augmented output (--output)")
    examples = list(reader)
    if reader.stats.skipped:
        log.warning(reader.stats.summary())
    if not examples:
        raise DataError(f"{input_path}: no examples to augment (only a header?)")
    with exclusive(output_path, "augmentation"):
        return augment_examples(examples, cfg, output_path, progress=progress)
