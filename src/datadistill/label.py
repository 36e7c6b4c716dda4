"""Step 2b: let a teacher label whole files (the seed's part.1), resumably and in input order.

Rows are scored in chunks (`chunk_size`, in input order); inside a chunk they are batched by length
and put back in order. Each finished chunk is appended to `OUTPUT.partial` and fsync'd, so a run
killed at any moment (even SIGKILL) loses at most the chunk in flight: the same command started
again counts the complete lines already there (dropping a torn last line), skips that many input
rows and continues. `OUTPUT.partial.json` records the input's and the teacher's content digests;
if either changed, labelling starts over. At the end the partial file is renamed to OUTPUT.

With `cache` (the pipeline keeps one in the teacher folder), every score is also appended to a
score cache keyed by the text(s) as the teacher saw them, valid for that one teacher: rows whose
text is there are not scored again. Runs that share a teacher share its scores: case 1 and case 2
augment the same way, and raising `max_label_rows` scores only the new rows.

Output TSV: label text_a [text_b] [tokens_a [tokens_b]] probs logits: label is the teacher's hard
label; probs/logits are space-separated in the teacher's label order (empty when it has none);
the texts are written as read (with `[UNK]` where augmentation put it).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .batching import in_length_order
from .data.cache import ScoreCache, file_digest
from .distributed import World
from .data.io import Example, ExampleReader, ExampleWriter, check_output, format_field
from .errors import DataError
from .lock import exclusive
from .log import Progress, logger
from .teacher.base import Teacher, TeacherError
from .text.vocab import UNK

log = logger.getChild("label")


@dataclass
class LabelStats:
    rows: int = 0  # rows in the output
    resumed_from: int = 0  # rows found already done
    seconds: float = 0.0
    label_counts: dict | None = None
    cached: int = 0  # rows taken from the score cache, not scored

    def summary(self) -> str:
        scored = self.rows - self.resumed_from - self.cached
        rate = f", {scored / self.seconds:,.1f} rows/s" if scored and self.seconds else ""
        resumed = f" (resumed after {self.resumed_from} rows)" if self.resumed_from else ""
        cached = f"; {self.cached} from the score cache" if self.cached else ""
        return (
            f"labelled {self.rows} rows{resumed} in {self.seconds:.1f}s ({scored} scored{rate}{cached}); "
            f"labels {self.label_counts}"
        )


def partial_path(output_path: str | Path) -> Path:
    """Where labelling keeps the rows done so far (renamed to the output at the end)."""
    output_path = Path(output_path)
    return output_path.with_name(output_path.name + ".partial")


def _fingerprint(input_path: Path, teacher: Teacher) -> dict:
    return {"input": file_digest(input_path), "teacher": teacher.describe()}


def _complete_rows(partial: Path, chunk_size: int) -> int:
    """Data rows of whole chunks written in `partial`; the rest (a torn line, part of a chunk) is cut
    off, so a resumed run scores the same chunks, in the same batches, as a run never stopped."""
    with open(partial, "rb+") as f:
        data = f.read()
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1  # after each line
        rows = max(0, len(ends) - 1) // chunk_size * chunk_size  # minus the header, whole chunks
        end = int(ends[rows]) if len(ends) else 0  # the header's end plus `rows` lines
        if end != len(data):
            f.truncate(end)
    return rows


def _chunks(it: Iterator[Example], size: int) -> Iterator[list[Example]]:
    buf: list[Example] = []
    for ex in it:
        buf.append(ex)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


def _count_lines(path: Path) -> int:
    """Lines in a file (a last line without a newline counts), read in 1 MiB blocks."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        for buf in iter(lambda: f.read(1 << 20), b""):
            n, last = n + buf.count(b"\n"), buf[-1:]
    return n + (last != b"\n")


class NoProbabilities(Exception):
    """The teacher answered labels without probabilities where `score_texts(need_probs=True)` asked for them."""


def _score(
    teacher: Teacher, a: list[str], b: list[str] | None, batch_size: int, need_probs: bool = False, scores=None
) -> tuple:
    """(labels, probs, logits) of every text, formatted as written, batched by length, in input order;
    each batch added to the score cache `scores` as soon as it is scored (a killed run keeps them)."""

    def run(idx):
        sc = teacher.score([a[i] for i in idx], [b[i] for i in idx] if b is not None else None)
        if need_probs and sc.probs is None:
            raise NoProbabilities  # at the first batch: an external teacher may be paid by the text
        out = (
            np.array(sc.labels, dtype=object),
            np.array(
                [format_field("probs", sc.probs[k] if sc.probs is not None else None) for k in range(len(idx))],
                dtype=object,
            ),
            np.array(
                [format_field("logits", sc.logits[k] if sc.logits is not None else None) for k in range(len(idx))],
                dtype=object,
            ),
        )
        if scores is not None:
            scores.add([(a[i], b[i] if b is not None else None, *(col[k] for col in out)) for k, i in enumerate(idx)])
        return out

    return in_length_order([len(t) for t in a], batch_size, run)


def teacher_view(teacher: Teacher, texts: list[str | None]) -> list[str]:
    """`texts` as every teacher call sees them (labelling, the dev check, the report): augmentation's
    `[UNK]` is the teacher's own unknown token, so a text is scored alike wherever it is scored."""
    return [(t or "").replace(UNK, teacher.unk_token) for t in texts]


def score_texts(
    teacher: Teacher,
    texts_a: list[str],
    texts_b: list[str] | None,
    batch_size: int,
    scores: ScoreCache | None = None,
    need_probs: bool = False,
) -> tuple[list[str], list[str], list[str], int]:
    """(labels, probs, logits) of every text, formatted as written, and how many came from the score
    cache `scores`; the others are scored (batched by length) and added to it batch by batch.
    Augmentation's `[UNK]` becomes the teacher's own unknown token first, in the cache key too. With
    `need_probs`, NoProbabilities as soon as a cached row or a scored batch has none."""
    a = teacher_view(teacher, texts_a)
    b = teacher_view(teacher, texts_b) if texts_b is not None else None
    n = len(a)
    labels, probs, logits = [""] * n, [""] * n, [""] * n
    todo = []
    for i in range(n):
        hit = scores.get(a[i], b[i] if b is not None else None) if scores is not None else None
        if hit and need_probs and not hit[1]:
            raise NoProbabilities
        if hit:
            labels[i], probs[i], logits[i] = hit
        else:
            todo.append(i)
    if todo:
        todo_b = [b[i] for i in todo] if b is not None else None
        got = _score(teacher, [a[i] for i in todo], todo_b, batch_size, need_probs, scores)
        for k, i in enumerate(todo):
            labels[i], probs[i], logits[i] = got[0][k], got[1][k], got[2][k]
    return labels, probs, logits, n - len(todo)


def label_file(
    teacher: Teacher,
    input_path: str | Path,
    output_path: str | Path,
    batch_size: int = 64,
    chunk_size: int = 1024,
    skip_bad_lines: bool = False,
    progress: bool = True,
    cache: str | Path | None = None,
    log_every: float = 60.0,
    world: World | None = None,
) -> LabelStats:
    """Label every row of `input_path` with `teacher` into `output_path` (see the module docstring).

    Without a progress bar (`progress=False`, e.g. a job writing to a log file) a line with the rows
    done, the scoring rate and the time left is logged at most every `log_every` seconds. Under
    torchrun (`world` of several ranks) each rank labels its share and rank 0 merges (`_label_shared`).
    """
    from .datasets import resolve

    input_path, output_path = resolve(input_path), Path(output_path)
    check_output(output_path, "labelled output (--output)")
    if output_path.resolve() == input_path.resolve():
        raise DataError(f"{output_path}: is the input file; labelling would overwrite it (choose another --output)")
    if cache and Path(cache).is_file() and Path(cache).stat().st_size:
        with open(cache, "rb") as f:
            if not f.read(13).startswith(b'# {"teacher":'):
                raise DataError(f"{cache}: is not a score cache (it would be overwritten); name a new file for --cache")
    args = (batch_size, chunk_size, skip_bad_lines, progress, cache, log_every)
    if world is not None and world.distributed:
        return _label_shared(teacher, input_path, output_path, args, world)
    with contextlib.ExitStack() as locks:
        locks.enter_context(exclusive(output_path, "labelling"))
        if cache:
            locks.enter_context(exclusive(Path(cache), "the teacher's score cache"))
        _drop_other_shares(output_path, 1)
        return _label_file(teacher, input_path, output_path, *args)


def _drop_other_shares(output_path: Path, size: int) -> None:
    """Remove the shards a run with another number of ranks left (killed before its merge): this run
    labels from its own; they would only be stale files beside the output."""
    import re

    for f in output_path.parent.glob(f"{output_path.name}.rank*-of-*"):
        m = re.match(rf"{re.escape(output_path.name)}\.rank\d+-of-(\d+)", f.name)
        if m and int(m.group(1)) != size:
            log.info(f"label: removing {f}, left by a run on {m.group(1)} ranks")
            f.unlink()


def shard_path(output_path: Path, rank: int, size: int) -> Path:
    """Where rank `rank` of `size` writes its share of OUTPUT until rank 0 merges the shares."""
    return output_path.with_name(f"{output_path.name}.rank{rank}-of-{size}")


def _label_shared(teacher: Teacher, input_path: Path, output_path: Path, args: tuple, world: World) -> LabelStats:
    """One rank's share: the chunks k with k % size == rank, into its own shard file (resumable on its
    own, like a whole run), new scores into its own cache file. Then rank 0 interleaves the shards
    chunk by chunk into OUTPUT: the bytes one process writes, since every chunk is scored alike."""
    batch_size, chunk_size, skip_bad_lines, progress, cache, log_every = args
    r, n = world.rank, world.size
    shard = shard_path(output_path, r, n)
    done_mark = shard.with_name(shard.name + ".json")
    cache_log = Path(f"{cache}.rank{r}") if cache else None
    with contextlib.ExitStack() as locks:
        refused = None
        if world.main:  # one job per output and cache: rank 0 holds both from start to merge
            try:
                locks.enter_context(exclusive(output_path, "labelling"))
                if cache:
                    locks.enter_context(exclusive(Path(cache), "the teacher's score cache"))
            except DataError as e:
                refused = str(e)
            if not refused:
                _drop_other_shares(output_path, n)
        refused = world.broadcast(refused)
        if refused:  # every rank stops with rank 0's one line, before any work
            raise DataError(refused)
        locks.enter_context(exclusive(shard, f"labelling (rank {r})"))
        meta = {**_fingerprint(input_path, teacher), "chunk_size": chunk_size, "part": [r, n]}
        mine = LabelStats()
        if shard.exists() and done_mark.exists() and json.loads(done_mark.read_text()) == meta:
            log.info(f"label: rank {r}: its share {shard} is already complete")
        else:
            stats = _label_file(
                teacher, input_path, shard, batch_size, chunk_size, skip_bad_lines, progress, cache, log_every,
                part=(r, n), cache_log=cache_log,
            )  # fmt: skip
            log.info(f"label: rank {r}: {stats.summary()}")
            done_mark.write_text(json.dumps(meta))
            mine = LabelStats(resumed_from=stats.resumed_from, seconds=stats.seconds, cached=stats.cached)
        ranks = world.gather(mine)  # every share written
        if world.main:
            t0 = time.perf_counter()
            counts = _merge_shards([shard_path(output_path, k, n) for k in range(n)], output_path, chunk_size)
            if cache:
                ScoreCache(cache, teacher.describe()).merge([Path(f"{cache}.rank{k}") for k in range(n)])
            stats = LabelStats(
                rows=sum(counts.values()),
                label_counts=counts,
                resumed_from=sum(x.resumed_from for x in ranks),
                cached=sum(x.cached for x in ranks),
                seconds=max(x.seconds for x in ranks) + time.perf_counter() - t0,  # the ranks ran side by side
            )
        world.barrier()  # OUTPUT exists for every rank when this returns
    return world.broadcast(stats if world.main else None)


def _merge_shards(shards: list[Path], output_path: Path, chunk_size: int) -> dict[str, int]:
    """Chunk k of the input from shard k % len(shards), in input order, into `output_path`; the shards
    (and their marks) are removed once it is written. Returns the label counts."""
    from .data.io import atomic_write

    counts: dict[str, int] = {}
    files = [open(s, encoding="utf-8", newline="\n") for s in shards]
    try:
        headers = {f.readline() for f in files}
        if len(headers) != 1:
            raise DataError(f"{output_path}: the ranks' shards have different headers; run the command again")
        with atomic_write(output_path) as out:
            out.write(headers.pop())
            k = 0
            while True:
                lines = [line for _, line in zip(range(chunk_size), files[k % len(files)])]  # range first: no line lost
                if not lines:
                    break
                for line in lines:
                    lab = line.split("\t", 1)[0]
                    counts[lab] = counts.get(lab, 0) + 1
                out.write("".join(lines))
                k += 1
            if any(f.readline() for f in files):
                raise DataError(f"{output_path}: a shard has rows beyond the input's chunks; run the command again")
    finally:
        for f in files:
            f.close()
    for s in shards:
        s.unlink()
        s.with_name(s.name + ".json").unlink(missing_ok=True)
    return counts


def _label_file(
    teacher: Teacher,
    input_path: Path,
    output_path: Path,
    batch_size: int,
    chunk_size: int,
    skip_bad_lines: bool,
    progress: bool,
    cache: str | Path | None,
    log_every: float,
    part: tuple[int, int] = (0, 1),
    cache_log: Path | None = None,
) -> LabelStats:
    """Label into `output_path`; with part (r, W), only the chunks k with k % W == r (one rank's share)."""
    reader = ExampleReader(input_path, require_label=False, skip_bad_lines=skip_bad_lines)
    partial = partial_path(output_path)
    meta_path = output_path.with_name(output_path.name + ".partial.json")
    meta = {**_fingerprint(input_path, teacher), "chunk_size": chunk_size, "part": list(part)}
    done = 0
    counts: dict[str, int] = {}
    if partial.exists() and meta_path.exists() and json.loads(meta_path.read_text()) == meta:
        done = _complete_rows(partial, chunk_size)
        if done:
            log.info(f"label: resuming {output_path}: {done} rows already labelled")
            with open(partial, encoding="utf-8") as f:  # the summary counts every row of the output
                next(f)
                for line in f:
                    lab = line.split("\t", 1)[0]
                    counts[lab] = counts.get(lab, 0) + 1
    elif partial.exists():
        log.info(f"label: {partial} belongs to another input, teacher, chunk size or share of ranks; starting over")
        partial.unlink()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta))

    stats = LabelStats(resumed_from=done)
    scores = ScoreCache(cache, teacher.describe(), append_to=cache_log) if cache else None
    t0 = time.perf_counter()
    rows = iter(reader)
    first = next(rows, None)
    if first is None:
        raise TeacherError(f"{input_path}: no rows to label")
    pair = first.text_b is not None
    tokens = first.tokens_a is not None

    def all_rows() -> Iterator[Example]:
        yield first
        yield from rows

    rank, size = part
    own = (c for k, c in enumerate(_chunks(all_rows(), chunk_size)) if k % size == rank)
    for _ in range(done // chunk_size):  # whole chunks already written
        next(own, None)
    header = (
        ["label", "text_a"]
        + (["text_b"] if pair else [])
        + (["tokens_a"] if tokens else [])
        + (["tokens_b"] if tokens and pair else [])
        + ["probs", "logits"]
    )
    # for the log lines: rows in the file (about: lenient reading may skip some)
    expected = (_count_lines(input_path) - (reader.fmt == "tsv")) // size if not progress else None
    bar = Progress(expected, "label", "row", progress, initial=done, every=log_every, log=log, total_is_estimate=True)
    with open(partial, "a", encoding="utf-8", newline="\n") as f:
        if done == 0:
            f.seek(0)
            f.truncate()
        writer = ExampleWriter(f, header, header=done == 0)
        for chunk in own:
            labels, probs, logits, cached = score_texts(
                teacher,
                [ex.text_a for ex in chunk],
                [ex.text_b or "" for ex in chunk] if pair else None,
                batch_size,
                scores,
            )
            stats.cached += cached
            writer.write_many(
                {
                    "label": lab,
                    "text_a": ex.text_a,
                    "text_b": ex.text_b,
                    "tokens_a": ex.tokens_a,
                    "tokens_b": ex.tokens_b,
                    "probs": p,
                    "logits": z,
                }
                for ex, lab, p, z in zip(chunk, labels, probs, logits)
            )
            for lab in labels:
                counts[lab] = counts.get(lab, 0) + 1
            f.flush()
            os.fsync(f.fileno())
            bar.note(f"{stats.cached:,} from the score cache")
            bar.update(len(chunk))
        bar.close()
        total = sum(counts.values())
    os.replace(partial, output_path)
    meta_path.unlink(missing_ok=True)
    if reader.stats.skipped:
        log.warning(reader.stats.summary())
    stats.rows, stats.seconds, stats.label_counts = total, time.perf_counter() - t0, counts
    return stats
