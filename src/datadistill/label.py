"""Step 2b: let a teacher label whole files (the seed's part.1), resumably and in input order.

Rows are scored in chunks (`chunk_size`, in input order); inside a chunk they are batched by length
and put back in order. Each finished chunk is appended to `OUTPUT.partial` and fsync'd, so a run
killed at any moment (even SIGKILL) loses at most the chunk in flight: the same command started
again counts the complete lines already there (dropping a torn last line), skips that many input
rows and continues. `OUTPUT.partial.json` records the input (path, size, mtime) and the teacher;
if either changed, labelling starts over. At the end the partial file is renamed to OUTPUT.

Output TSV: label text_a [text_b] [tokens_a [tokens_b]] probs logits: label is the teacher's hard
label; probs/logits are space-separated in the teacher's label order (empty when it has none);
the texts are written as read (with `[UNK]` where augmentation put it).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


from .batching import length_batches
from .data.io import Example, ExampleReader, clean_field
from .teacher.base import Teacher, TeacherError
from .text.vocab import UNK


@dataclass
class LabelStats:
    rows: int = 0          # rows in the output
    resumed_from: int = 0  # rows found already done
    seconds: float = 0.0
    label_counts: dict | None = None

    def summary(self) -> str:
        new = self.rows - self.resumed_from
        rate = new / self.seconds if self.seconds else float("inf")
        resumed = f" (resumed after {self.resumed_from} rows)" if self.resumed_from else ""
        return f"labelled {self.rows} rows{resumed} in {self.seconds:.1f}s ({rate:,.1f} rows/s); labels {self.label_counts}"


def _fingerprint(input_path: Path, teacher: Teacher) -> dict:
    st = input_path.stat()
    return {"input": str(input_path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "teacher": teacher.describe()}


def _complete_rows(partial: Path) -> int:
    """Data rows fully written in `partial`; a torn last line (no newline) is cut off."""
    with open(partial, "rb+") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            f.truncate(end)
    return max(0, data[:end].count(b"\n") - 1)  # minus the header


def _chunks(it: Iterator[Example], size: int) -> Iterator[list[Example]]:
    buf: list[Example] = []
    for ex in it:
        buf.append(ex)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


def _fmt(values) -> str:
    return "" if values is None else " ".join(f"{x:.6g}" for x in values)


def label_file(teacher: Teacher, input_path: str | Path, output_path: str | Path, batch_size: int = 64,
               chunk_size: int = 1024, skip_bad_lines: bool = False, progress: bool = True, log=None) -> LabelStats:
    """Label every row of `input_path` with `teacher` into `output_path` (see the module docstring)."""
    from tqdm import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    input_path, output_path = Path(input_path), Path(output_path)
    reader = ExampleReader(input_path, require_label=False, skip_bad_lines=skip_bad_lines)
    partial = output_path.with_name(output_path.name + ".partial")
    meta_path = output_path.with_name(output_path.name + ".partial.json")
    meta = _fingerprint(input_path, teacher)
    done = 0
    if partial.exists() and meta_path.exists() and json.loads(meta_path.read_text()) == meta:
        done = _complete_rows(partial)
        if done:
            log(f"label: resuming {output_path}: {done} rows already labelled")
    elif partial.exists():
        log(f"label: {partial} belongs to another input or teacher; starting over")
        partial.unlink()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta))

    stats = LabelStats(resumed_from=done)
    counts: dict[str, int] = {}
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

    stream = all_rows()
    skipped = 0
    for _ in range(done):
        if next(stream, None) is None:
            break
        skipped += 1
    header = ["label", "text_a"] + (["text_b"] if pair else []) + (["tokens_a"] if tokens else []) \
        + (["tokens_b"] if tokens and pair else []) + ["probs", "logits"]
    with open(partial, "a", encoding="utf-8", newline="\n") as f:
        if done == 0:
            f.seek(0)
            f.truncate()
            f.write("\t".join(header) + "\n")
        bar = tqdm(desc="labelling", unit="row", initial=done, disable=not progress, file=sys.stderr)
        for chunk in _chunks(stream, chunk_size):
            a = [ex.text_a.replace(UNK, teacher.unk_token) for ex in chunk]
            b = [(ex.text_b or "").replace(UNK, teacher.unk_token) for ex in chunk] if pair else None
            labels: list[str] = [""] * len(chunk)
            probs: list = [None] * len(chunk)
            logits: list = [None] * len(chunk)
            for idx in length_batches([len(t) for t in a], batch_size):
                sc = teacher.score([a[i] for i in idx], [b[i] for i in idx] if b is not None else None)
                for k, i in enumerate(idx):
                    labels[i] = sc.labels[k]
                    probs[i] = sc.probs[k] if sc.probs is not None else None
                    logits[i] = sc.logits[k] if sc.logits is not None else None
            lines = []
            for ex, lab, p, z in zip(chunk, labels, probs, logits):
                fields = [lab, clean_field(ex.text_a)] + ([clean_field(ex.text_b or "")] if pair else [])
                if tokens:
                    fields.append(" ".join(ex.tokens_a or []))
                    if pair:
                        fields.append(" ".join(ex.tokens_b or []))
                fields += [_fmt(p), _fmt(z)]
                lines.append("\t".join(fields) + "\n")
                counts[lab] = counts.get(lab, 0) + 1
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(chunk))
        bar.close()
        total = done + sum(counts.values())
    os.replace(partial, output_path)
    meta_path.unlink(missing_ok=True)
    if reader.stats.skipped:
        log(reader.stats.summary())
    stats.rows, stats.seconds, stats.label_counts = total, time.perf_counter() - t0, counts
    return stats
