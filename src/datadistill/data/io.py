"""Streaming readers and atomic writers for TSV (with header), JSON Lines and plain text, and the
content digests of files and model folders (what resume and step records compare).

Column names follow ERNIE: `label`, `text_a`, optional `text_b`. Files written by datadistill add
`tokens_a`/`tokens_b` (the segmented form, tokens joined by one space) and, for teacher-labelled
data, `probs`/`logits` (space-separated floats in label-id order).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

from .labels import LabelMap

BOM = b"\xef\xbb\xbf"
MAX_REPORTED = 5


class DataError(ValueError):
    """Bad input; the message names the file, the line and the problem."""


@dataclass
class Example:
    """One text (or text pair), with whatever the file carried besides."""

    text_a: str
    text_b: str | None = None
    label: str | None = None
    tokens_a: list[str] | None = None
    tokens_b: list[str] | None = None
    probs: list[float] | None = None
    logits: list[float] | None = None
    line: int = 0  # line number in the source file (1-based, header included)


@dataclass
class ReadStats:
    """What a reader did: rows read, bad lines skipped (lenient mode), and the first few problems."""

    path: str
    rows: int = 0
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        if not self.skipped:
            return f"{self.path}: read {self.rows} rows"
        first = "; ".join(f"line {n}: {p}" for n, p in self.problems)
        more = ", ..." if self.skipped > len(self.problems) else ""
        return f"{self.path}: read {self.rows} rows, skipped {self.skipped} bad lines ({first}{more})"


def detect_format(path: str | Path) -> str:
    """'jsonl' for .jsonl/.json, 'text' for .txt, else 'tsv' (ERNIE's part.0/part.1 have no suffix)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix == ".txt":
        return "text"
    return "tsv"


class _Skip(Exception):
    pass


class ExampleReader:
    """Iterate over the examples of one file, streaming, with strict or lenient handling of bad lines.

    Strict (default): the first bad line raises `DataError("FILE, line N: PROBLEM")`.
    Lenient (`skip_bad_lines=True`): bad lines are skipped and counted in `self.stats`.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: str | None = None,
        label_column: str = "label",
        require_label: bool = True,
        label_map: LabelMap | None = None,
        skip_bad_lines: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fmt = fmt or detect_format(path)
        if self.fmt not in ("tsv", "jsonl", "text"):
            raise DataError(f"{self.path}: unknown format '{self.fmt}' (use tsv, jsonl or text)")
        self.label_column = label_column
        self.require_label = require_label
        self.label_map = label_map
        self.skip_bad_lines = skip_bad_lines
        self.stats = ReadStats(str(self.path))
        if self.fmt == "text" and require_label:
            raise DataError(f"{self.path}: plain-text files carry no labels; use a TSV file with a "
                            f"'{label_column}' column or JSON Lines with a '{label_column}' field")
        if not self.path.exists():
            raise DataError(f"{self.path}: file does not exist")
        if self.path.is_dir():
            raise DataError(f"{self.path}: is a folder, expected a file")

    # -- line handling -------------------------------------------------------------------------
    def _lines(self, f: IO[bytes]) -> Iterator[tuple[int, str | None, str]]:
        """(line number, decoded text or None, problem) with BOM and CR/LF removed."""
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            try:
                yield n, raw.decode("utf-8"), ""
            except UnicodeDecodeError as e:
                yield n, None, f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1})"

    def _bad(self, n: int, problem: str) -> None:
        if not self.skip_bad_lines:
            raise DataError(f"{self.path}, line {n}: {problem}")
        self.stats.skipped += 1
        if len(self.stats.problems) < MAX_REPORTED:
            self.stats.problems.append((n, problem))
        raise _Skip

    def _check_text(self, n: int, name: str, value: str) -> str:
        if not value.strip():
            self._bad(n, f"empty {name}")
        return value

    def _check_label(self, n: int, label: str | None) -> str | None:
        if label is None:
            return None
        label = label.strip()
        if not label:
            self._bad(n, f"empty {self.label_column}")
        if self.label_map is not None and label not in self.label_map:
            self._bad(n, f"label '{label}' is not in the label map (known: {', '.join(self.label_map.labels)})")
        return label

    # -- formats -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Example]:
        with open(self.path, "rb") as f:
            parse = {"tsv": self._tsv, "jsonl": self._jsonl, "text": self._text}[self.fmt]
            for ex in parse(self._lines(f)):
                self.stats.rows += 1
                yield ex

    def _text(self, lines) -> Iterator[Example]:
        empty = True
        for n, line, problem in lines:
            empty = False
            try:
                if line is None:
                    self._bad(n, problem)
                yield Example(text_a=self._check_text(n, "text", line), line=n)
            except _Skip:
                continue
        if empty:
            raise DataError(f"{self.path}: file is empty")

    def _tsv(self, lines) -> Iterator[Example]:
        header_line = next(lines, None)
        if header_line is None:
            raise DataError(f"{self.path}: file is empty (expected a header row such as "
                            f"'{self.label_column}<TAB>text_a')")
        n, header, problem = header_line
        if header is None:
            raise DataError(f"{self.path}, line {n}: {problem}")
        cols = header.split("\t")
        index = {c.strip(): i for i, c in enumerate(cols)}
        need = ["text_a"] + ([self.label_column] if self.require_label else [])
        missing = [c for c in need if c not in index]
        if missing:
            raise DataError(f"{self.path}, line 1: missing required column '{missing[0]}' "
                            f"(header has: {', '.join(c.strip() for c in cols)})")
        i_a, i_b = index["text_a"], index.get("text_b")
        i_label = index.get(self.label_column)
        i_ta, i_tb = index.get("tokens_a"), index.get("tokens_b")
        i_p, i_l = index.get("probs"), index.get("logits")
        width = len(cols)
        for n, line, problem in lines:
            try:
                if line is None:
                    self._bad(n, problem)
                fields = line.split("\t")
                if len(fields) != width:
                    kind = "few" if len(fields) < width else "many"
                    self._bad(n, f"too {kind} fields: expected {width} ({', '.join(cols)}), found {len(fields)}")
                ex = Example(text_a=self._check_text(n, "text_a", fields[i_a]), line=n)
                if i_b is not None:
                    ex.text_b = self._check_text(n, "text_b", fields[i_b])
                if i_label is not None:
                    ex.label = self._check_label(n, fields[i_label])
                if i_ta is not None:
                    ex.tokens_a = fields[i_ta].split(" ")
                if i_tb is not None:
                    ex.tokens_b = fields[i_tb].split(" ")
                if i_p is not None:
                    ex.probs = self._floats(n, "probs", fields[i_p])
                if i_l is not None:
                    ex.logits = self._floats(n, "logits", fields[i_l])
                yield ex
            except _Skip:
                continue

    def _floats(self, n: int, name: str, value: str) -> list[float] | None:
        if not value.strip():
            return None
        try:
            return [float(v) for v in value.split()]
        except ValueError:
            self._bad(n, f"{name} must be space-separated numbers, got '{value[:40]}'")
        return None

    def _jsonl(self, lines) -> Iterator[Example]:
        empty = True
        for n, line, problem in lines:
            empty = False
            try:
                if line is None:
                    self._bad(n, problem)
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    self._bad(n, f"invalid JSON: {e.msg}")
                if not isinstance(obj, dict):
                    self._bad(n, "expected a JSON object")
                for key in ["text_a"] + ([self.label_column] if self.require_label else []):
                    if key not in obj:
                        self._bad(n, f"missing field '{key}'")
                text_a = obj["text_a"]
                if not isinstance(text_a, str):
                    self._bad(n, "text_a must be a string")
                ex = Example(text_a=self._check_text(n, "text_a", text_a), line=n)
                if obj.get("text_b") is not None:
                    ex.text_b = self._check_text(n, "text_b", str(obj["text_b"]))
                if obj.get(self.label_column) is not None:
                    ex.label = self._check_label(n, str(obj[self.label_column]))
                for key in ("tokens_a", "tokens_b"):
                    if obj.get(key) is not None:
                        v = obj[key]
                        setattr(ex, key, list(v) if isinstance(v, list) else str(v).split(" "))
                for key in ("probs", "logits"):
                    if obj.get(key) is not None:
                        setattr(ex, key, [float(v) for v in obj[key]])
                yield ex
            except _Skip:
                continue
        if empty:
            raise DataError(f"{self.path}: file is empty")


def read_examples(path: str | Path, **kwargs) -> list[Example]:
    """Read a whole file into a list (use `ExampleReader` to stream)."""
    return list(ExampleReader(path, **kwargs))


# -- files -------------------------------------------------------------------------------------
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (16 hex digits), memoised per (path, size, mtime): a file copied again with
    the same bytes (a fresh clone, a re-provisioned data folder) is the same input. Reads ~1 GB/s."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()[:16]
    return _DIGESTS[key]


SCORE_CACHE = "scores.tsv"   # the pipeline keeps a teacher's score cache in its folder under this name


def score_cache_name(precision: str = "fp32") -> str:
    """scores.tsv for fp32 scores, scores.bf16.tsv etc.: one cache per precision, none overwrites another."""
    return SCORE_CACHE if precision == "fp32" else f"scores.{precision}.tsv"


def model_files(folder: str | Path) -> list[Path]:
    """A model folder's own files, sorted: not the score caches or the step records kept beside them."""
    return sorted(f for f in Path(folder).iterdir() if f.is_file() and not f.name.startswith(".")
                  and not (f.name.startswith("scores.") and f.name.endswith(".tsv")))


def model_digest(folder: str | Path) -> str:
    """`name=digest,...` over a model folder's own files: its identity by content, not path or times."""
    return ",".join(f"{f.name}={file_digest(f)}" for f in model_files(folder))


# -- writing -----------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside `path`, then rename: an interrupted run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def clean_field(text: str) -> str:
    """TSV fields cannot hold tabs or line breaks: replace them by a space."""
    if "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return text


def example_columns(examples_have_b: bool, label: bool = True, tokens: bool = False,
                    scores: bool = False) -> list[str]:
    cols = (["label"] if label else []) + ["text_a"] + (["text_b"] if examples_have_b else [])
    if tokens:
        cols += ["tokens_a"] + (["tokens_b"] if examples_have_b else [])
    if scores:
        cols += ["probs", "logits"]
    return cols


def _field(ex: Example, col: str) -> str:
    v = getattr(ex, col)
    if v is None:
        return ""
    if col in ("tokens_a", "tokens_b"):
        return " ".join(v)
    if col in ("probs", "logits"):
        return " ".join(f"{x:.6g}" for x in v)
    return clean_field(str(v))


def write_examples(path: str | Path, examples: Iterable[Example], columns: list[str]) -> int:
    """Write examples as TSV with a header (atomically); returns the number of rows."""
    n = 0
    with atomic_write(path) as f:
        f.write("\t".join(columns) + "\n")
        for ex in examples:
            f.write("\t".join(_field(ex, c) for c in columns) + "\n")
            n += 1
    return n
