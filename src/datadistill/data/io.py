"""Streaming readers and the one writer for example files: TSV (with header), JSON Lines, plain text.

Column names follow ERNIE: `label`, `text_a`, optional `text_b`. Files written by datadistill add
`tokens_a`/`tokens_b` (the segmented form, tokens joined by one space) and, for teacher-labelled
data, `probs`/`logits` (space-separated floats in label-id order).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from ..errors import DataError
from .labels import LabelMap

BOM = b"\xef\xbb\xbf"
MAX_REPORTED = 5


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
    qid: str | None = None  # the query a candidate answers (pair-order metric groups by it)
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
        from ..datasets import resolve

        self.path = resolve(path)  # a built-in name such as chnsenticorp:train, or a path
        self.fmt = fmt or detect_format(self.path)
        if self.fmt not in ("tsv", "jsonl", "text"):
            raise DataError(f"{self.path}: unknown format '{self.fmt}' (use tsv, jsonl or text)")
        self.label_column = label_column
        self.require_label = require_label
        self.label_map = label_map
        self.skip_bad_lines = skip_bad_lines
        self.stats = ReadStats(str(self.path))
        if self.fmt == "text" and require_label:
            raise DataError(
                f"{self.path}: plain-text files carry no labels; use a TSV file with a "
                f"'{label_column}' column or JSON Lines with a '{label_column}' field"
            )
        if not self.path.exists():
            raise DataError(f"{self.path}: file does not exist")
        if self.path.is_dir():
            raise DataError(f"{self.path}: is a folder, expected a file")

    # -- line handling -------------------------------------------------------------------------
    def _lines(self, f: IO[bytes]) -> Iterator[tuple[int, str | None, str]]:
        """(line number, decoded text or None, problem) with BOM and CR/LF removed."""
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            if b"\r" in raw:  # CR-only line ends (old Mac files) would read as one long line
                if n == 1:
                    raise DataError(f"{self.path}: lines end in CR alone; convert the file to LF line ends")
                yield n, None, "a carriage return (CR) inside the line"
                continue
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
            raise DataError(
                f"{self.path}: file is empty (expected a header row such as '{self.label_column}<TAB>text_a')"
            )
        n, header, problem = header_line
        if header is None:
            raise DataError(f"{self.path}, line {n}: {problem}")
        cols = header.split("\t")
        index = {c.strip(): i for i, c in enumerate(cols)}
        if len(index) != len(cols):
            dup = next(c.strip() for i, c in enumerate(cols) if index[c.strip()] != i)
            raise DataError(f"{self.path}, line 1: duplicate column '{dup}' (header has: {', '.join(cols)})")
        need = ["text_a"] + ([self.label_column] if self.require_label else [])
        missing = [c for c in need if c not in index]
        if missing:
            hint = (
                "; name the label column with --label-column (data.label_column in a config)"
                if missing[0] == self.label_column
                else ""
            )
            raise DataError(
                f"{self.path}, line 1: missing required column '{missing[0]}' "
                f"(header has: {', '.join(c.strip() for c in cols)}){hint}"
            )
        i_a, i_b = index["text_a"], index.get("text_b")
        i_label = index.get(self.label_column)
        i_ta, i_tb = index.get("tokens_a"), index.get("tokens_b")
        i_p, i_l = index.get("probs"), index.get("logits")
        i_q = index.get("qid")
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
                if i_q is not None:  # a blank qid would join unrelated queries into one group
                    ex.qid = self._check_text(n, "qid", fields[i_q]).strip()
                yield ex
            except _Skip:
                continue

    def _floats(self, n: int, name: str, value: str) -> list[float] | None:
        if not value.strip():
            return None
        try:
            values = [float(v) for v in value.split()]
        except ValueError:
            self._bad(n, f"{name} must be space-separated numbers, got '{value[:40]}'")
        return self._check_scores(n, name, values)

    def _check_scores(self, n: int, name: str, values: list[float]) -> list[float]:
        """Teacher scores a student can learn from: finite; probabilities in [0, 1] adding up to 1
        (to PROB_SUM_TOLERANCE: they are written rounded)."""
        got = " ".join(f"{v:g}" for v in values)[:40]
        if not all(math.isfinite(v) for v in values):
            self._bad(n, f"{name} must be finite numbers, got '{got}'")
        if name == "probs" and not is_probability_row(values):
            self._bad(n, f"probs must be probabilities in [0, 1] adding up to 1, got '{got}'")
        return values

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
                if "qid" in obj:
                    ex.qid = self._check_text(n, "qid", "" if obj["qid"] is None else str(obj["qid"])).strip()
                if obj.get(self.label_column) is not None:
                    ex.label = self._check_label(n, str(obj[self.label_column]))
                elif self.require_label:
                    self._bad(n, f"empty {self.label_column} (null)")
                for key in ("tokens_a", "tokens_b"):
                    if obj.get(key) is not None:
                        v = obj[key]
                        setattr(ex, key, list(v) if isinstance(v, list) else str(v).split(" "))
                for key in ("probs", "logits"):
                    v = obj.get(key)
                    if v is not None:
                        if not isinstance(v, list) or not all(
                            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v
                        ):
                            self._bad(n, f"{key} must be a list of numbers, got {json.dumps(v)[:40]}")
                        setattr(ex, key, self._check_scores(n, key, [float(x) for x in v]))
                yield ex
            except _Skip:
                continue
        if empty:
            raise DataError(f"{self.path}: file is empty")


def read_examples(path: str | Path, **kwargs) -> list[Example]:
    """Read a whole file into a list (use `ExampleReader` to stream)."""
    return list(ExampleReader(path, **kwargs))


# -- writing -----------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside `path`, then rename: an interrupted run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode, like open()
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


def check_output(path: str | Path, what: str = "output") -> Path:
    """Refuse, before any work, an output path that is a folder or lies under a file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; the {what} is a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"{path}: {parent} is a file, not a folder")
            break
    return path


def give_default_mode(folder: str | Path) -> None:
    """Files that libraries wrote 0600 (safetensors does) get the mode `open()` would give them."""
    for f in Path(folder).iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def clean_field(text: str) -> str:
    """TSV fields cannot hold tabs or line breaks: replace them by a space."""
    if "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return text


SCORE_COLUMNS = ("probs", "logits")
# how far from 1 a row of probabilities may add up: programs print them rounded (3 decimals for up to
# 40 labels, 2 for up to 4, stay inside it); percentages or raw scores do not
PROB_SUM_TOLERANCE = 0.02


def is_probability_row(values: list[float]) -> bool:
    """Numbers in [0, 1] (so finite) adding up to 1, to PROB_SUM_TOLERANCE."""
    return all(0 <= v <= 1 for v in values) and abs(sum(values) - 1) <= PROB_SUM_TOLERANCE


TOKEN_COLUMNS = ("tokens_a", "tokens_b")


def format_field(col: str, value: Any) -> str:
    """One TSV field: token lists joined by a space, scores as space-separated %.6g, text cleaned of tabs."""
    if value is None:
        return ""
    if col in TOKEN_COLUMNS and not isinstance(value, str):
        return " ".join(value)
    if col in SCORE_COLUMNS and not isinstance(value, str):
        return " ".join(f"{x:.6g}" for x in value)
    return clean_field(str(value))


class ExampleWriter:
    """The one writer of example files: rows (an `Example` or a mapping column -> value) to an open
    text file as TSV with a header row, or as JSON Lines. Values are formatted by `format_field`."""

    def __init__(self, f: IO[str], columns: list[str], fmt: str = "tsv", header: bool = True) -> None:
        if fmt not in ("tsv", "jsonl"):
            raise ValueError(f"can write tsv or jsonl, not {fmt}")
        self.f, self.columns, self.fmt = f, list(columns), fmt
        self.rows = 0
        if header and fmt == "tsv":
            f.write("\t".join(self.columns) + "\n")

    def line(self, row: Example | Mapping[str, Any]) -> str:
        get = row.get if isinstance(row, Mapping) else (lambda c: getattr(row, c, None))
        if self.fmt == "jsonl":
            obj = {}
            for c in self.columns:
                v = get(c)
                if c in SCORE_COLUMNS and isinstance(v, str):
                    v = [float(x) for x in v.split()] if v else None
                elif c in TOKEN_COLUMNS and isinstance(v, str):
                    v = v.split(" ") if v else None
                obj[c] = v
            return json.dumps(obj, ensure_ascii=False) + "\n"
        return "\t".join(format_field(c, get(c)) for c in self.columns) + "\n"

    def write(self, row: Example | Mapping[str, Any]) -> None:
        self.f.write(self.line(row))
        self.rows += 1

    def write_many(self, rows: Iterable[Example | Mapping[str, Any]]) -> None:
        """Several rows in one write call (a chunk made durable together)."""
        lines = [self.line(r) for r in rows]
        self.f.write("".join(lines))
        self.rows += len(lines)


def write_examples(path: str | Path, examples: Iterable[Example | Mapping[str, Any]], columns: list[str]) -> int:
    """Write rows to `path` atomically (JSON Lines for .jsonl/.json, else TSV); returns the number of rows."""
    fmt = "jsonl" if detect_format(path) == "jsonl" else "tsv"
    with atomic_write(path) as f:
        w = ExampleWriter(f, columns, fmt)
        for ex in examples:
            w.write(ex)
    return w.rows


def read_splits(
    train: str | Path,
    dev: str | Path | None = None,
    test: str | Path | None = None,
    label_column: str = "label",
    skip_bad_lines: bool = False,
):
    """Read the labelled train file, build the label map from it, read dev and test against that map.

    Returns (train, dev, test, label_map); dev/test are [] when not given. Lenient reading logs a
    summary of the skipped lines."""
    from ..log import logger

    log = logger.getChild("data")

    def read(path, label_map):
        reader = ExampleReader(path, label_column=label_column, label_map=label_map, skip_bad_lines=skip_bad_lines)
        rows = list(reader)
        if reader.stats.skipped:
            log.warning(reader.stats.summary())
        return rows

    train_ex = read(train, None)
    if not train_ex:
        raise DataError(f"{train}: no examples (only a header?)")
    label_map = LabelMap.from_labels(ex.label for ex in train_ex)
    if len(label_map) < 2:  # a model of one label scores 100 on any data that has only it
        raise DataError(
            f"{train}: every example has {label_column} '{label_map.labels[0]}': a classifier needs at least two labels"
        )
    folded: dict[str, list[str]] = {}
    for label in label_map.labels:
        folded.setdefault(label.casefold(), []).append(label)
    for same in (v for v in folded.values() if len(v) > 1):
        log.warning(
            f"{train}: labels {', '.join(repr(x) for x in same)} differ only in case; they are separate classes"
        )
    dev_ex = read(dev, label_map) if dev else []
    if dev and not dev_ex:
        raise DataError(f"{dev}: no examples (only a header?)")
    test_ex = read(test, label_map) if test else []
    if test and not test_ex:
        raise DataError(f"{test}: no examples (only a header?)")
    return train_ex, dev_ex, test_ex, label_map
