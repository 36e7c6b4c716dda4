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

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


from .batching import length_batches
from .data.io import Example, ExampleReader, clean_field, file_digest
from .teacher.base import Teacher, TeacherError
from .text.vocab import UNK


@dataclass
class LabelStats:
    rows: int = 0          # rows in the output
    resumed_from: int = 0  # rows found already done
    seconds: float = 0.0
    label_counts: dict | None = None
    cached: int = 0        # rows taken from the score cache, not scored

    def summary(self) -> str:
        scored = self.rows - self.resumed_from - self.cached
        rate = f", {scored / self.seconds:,.1f} rows/s" if scored and self.seconds else ""
        resumed = f" (resumed after {self.resumed_from} rows)" if self.resumed_from else ""
        cached = f"; {self.cached} from the score cache" if self.cached else ""
        return (f"labelled {self.rows} rows{resumed} in {self.seconds:.1f}s ({scored} scored{rate}{cached}); "
                f"labels {self.label_counts}")


class ScoreCache:
    """One teacher's scores by text: `text_a<TAB>text_b<TAB>label<TAB>probs<TAB>logits` lines after a
    first line `# {"teacher": ...}`. A cache of another teacher is replaced; a torn line is ignored."""

    def __init__(self, path: str | Path, teacher: Teacher, log=None) -> None:
        self.path = Path(path)
        self.teacher = teacher.describe()
        self.scores: dict[tuple[str, str], tuple[str, str, str]] = {}
        head = json.dumps({"teacher": self.teacher})
        if self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                if f.readline().rstrip("\n") == f"# {head}":
                    for line in f:
                        parts = line.rstrip("\n").split("\t")
                        if line.endswith("\n") and len(parts) == 5:
                            self.scores[(parts[0], parts[1])] = (parts[2], parts[3], parts[4])
                elif log:
                    log(f"label: {self.path} holds another teacher's scores; starting a new cache")
        if not self.scores:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"# {head}\n", encoding="utf-8")

    def get(self, a: str, b: str | None) -> tuple[str, str, str] | None:
        return self.scores.get((clean_field(a), clean_field(b or "")))

    def add(self, rows: list[tuple[str, str | None, str, str, str]]) -> None:
        """Append (text_a, text_b, label, probs, logits) rows, durably."""
        lines = []
        for a, b, lab, p, z in rows:
            key = (clean_field(a), clean_field(b or ""))
            self.scores[key] = (lab, p, z)
            lines.append("\t".join((*key, lab, p, z)) + "\n")
        with open(self.path, "a", encoding="utf-8", newline="\n") as f:
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())


def _fingerprint(input_path: Path, teacher: Teacher) -> dict:
    return {"input": file_digest(input_path), "teacher": teacher.describe()}


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


def _count_lines(path: Path) -> int:
    """Lines in a file (a last line without a newline counts), read in 1 MiB blocks."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        for buf in iter(lambda: f.read(1 << 20), b""):
            n, last = n + buf.count(b"\n"), buf[-1:]
    return n + (last != b"\n")


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def label_file(teacher: Teacher, input_path: str | Path, output_path: str | Path, batch_size: int = 64,
               chunk_size: int = 1024, skip_bad_lines: bool = False, progress: bool = True, log=None,
               cache: str | Path | None = None, log_every: float = 60.0) -> LabelStats:
    """Label every row of `input_path` with `teacher` into `output_path` (see the module docstring).

    Without a progress bar (`progress=False`, e.g. a job writing to a log file) a line with the rows
    done, the scoring rate and the time left is logged at most every `log_every` seconds.
    """
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
    scores = ScoreCache(cache, teacher, log) if cache else None
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
        # for the log lines: rows in the file (about: lenient reading may skip some)
        expected = _count_lines(input_path) - (reader.fmt == "tsv") if not progress else 0
        last_log = time.perf_counter()
        for chunk in _chunks(stream, chunk_size):
            a = [ex.text_a.replace(UNK, teacher.unk_token) for ex in chunk]
            b = [(ex.text_b or "").replace(UNK, teacher.unk_token) for ex in chunk] if pair else None
            labels: list[str] = [""] * len(chunk)
            probs: list[str] = [""] * len(chunk)    # formatted, as written
            logits: list[str] = [""] * len(chunk)
            todo = []
            for i in range(len(chunk)):
                hit = scores.get(a[i], b[i] if b is not None else None) if scores else None
                if hit:
                    labels[i], probs[i], logits[i] = hit
                    stats.cached += 1
                else:
                    todo.append(i)
            for idx in length_batches([len(a[i]) for i in todo], batch_size):
                idx = [todo[j] for j in idx]
                sc = teacher.score([a[i] for i in idx], [b[i] for i in idx] if b is not None else None)
                for k, i in enumerate(idx):
                    labels[i] = sc.labels[k]
                    probs[i] = _fmt(sc.probs[k] if sc.probs is not None else None)
                    logits[i] = _fmt(sc.logits[k] if sc.logits is not None else None)
            if scores and todo:
                scores.add([(a[i], b[i] if b is not None else None, labels[i], probs[i], logits[i]) for i in todo])
            lines = []
            for ex, lab, p, z in zip(chunk, labels, probs, logits):
                fields = [lab, clean_field(ex.text_a)] + ([clean_field(ex.text_b or "")] if pair else [])
                if tokens:
                    fields.append(" ".join(ex.tokens_a or []))
                    if pair:
                        fields.append(" ".join(ex.tokens_b or []))
                fields += [p, z]
                lines.append("\t".join(fields) + "\n")
                counts[lab] = counts.get(lab, 0) + 1
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(chunk))
            now = time.perf_counter()
            if not progress and now - last_log >= log_every:
                last_log, n_done = now, done + sum(counts.values())
                rate = (n_done - done) / max(now - t0, 1e-9)           # rows per second, cache hits included
                left = f", about {_duration((expected - n_done) / rate)} left" if rate and expected > n_done else ""
                log(f"label: {n_done:,} of about {expected:,} rows ({100 * n_done / max(expected, 1):.0f} %), "
                    f"{stats.cached:,} from the score cache, {rate:.1f} rows/s{left}")
        bar.close()
        total = done + sum(counts.values())
    os.replace(partial, output_path)
    meta_path.unlink(missing_ok=True)
    if reader.stats.skipped:
        log(reader.stats.summary())
    stats.rows, stats.seconds, stats.label_counts = total, time.perf_counter() - t0, counts
    return stats
