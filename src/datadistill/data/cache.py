"""Content identity and caches: file and model-folder digests (what resume checks and step records
compare), and a teacher's score cache (a text is scored once per teacher).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from ..log import logger
from .io import clean_field, is_probability_row

log = logger.getChild("cache")
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (16 hex digits), memoised per (path, size, mtime): a file copied again with
    the same bytes (a fresh clone, a re-provisioned data folder) is the same input. Reads ~1 GB/s."""
    from ..datasets import resolve

    p = resolve(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()[:16]
    return _DIGESTS[key]


def content_digest(path: str | Path) -> str:
    """A file's digest, a folder's `model_digest`, or "missing"."""
    from ..datasets import resolve

    p = resolve(path)
    if p.is_dir():
        return model_digest(p)
    return file_digest(p) if p.exists() else "missing"


def digest(obj) -> str:
    """A short digest of anything JSON can write (settings, lists of digests)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_files(folder: str | Path) -> list[Path]:
    """A model folder's own files, sorted: not the score caches or the step records kept beside them."""
    return sorted(
        f
        for f in Path(folder).iterdir()
        if f.is_file() and not f.name.startswith(".") and not (f.name.startswith("scores.") and f.name.endswith(".tsv"))
    )


def model_digest(folder: str | Path) -> str:
    """`name=digest,...` over a model folder's own files: its identity by content, not path or times."""
    return ",".join(f"{f.name}={file_digest(f)}" for f in model_files(folder))


SCORE_CACHE = "scores.tsv"  # the pipeline keeps a teacher's score cache in its folder under this name


def score_cache_name(precision: str = "fp32") -> str:
    """scores.tsv for fp32 scores, scores.bf16.tsv etc.: one cache per precision, none overwrites another."""
    return SCORE_CACHE if precision == "fp32" else f"scores.{precision}.tsv"


def _key_hash(a: str, b: str) -> int:
    """64 bits of a cache key (the line's text is compared on a hit, so a collision costs a miss, not a wrong score)."""
    return int.from_bytes(hashlib.blake2b(f"{a}\t{b}".encode(), digest_size=8).digest(), "little", signed=True)


def _scores_ok(fields: list[str]) -> bool:
    """A cached (label, probs, logits) as label_file writes them: a label; probabilities adding up to 1
    with logits as numbers (or none), or neither (a teacher that answers labels only)."""
    if len(fields) != 3 or not fields[0]:
        return False
    try:
        probs = [float(v) for v in fields[1].split()]
        logits = [float(v) for v in fields[2].split()]
    except ValueError:
        return False
    if not probs:
        return not logits
    return is_probability_row(probs) and all(math.isfinite(v) for v in logits) and len(logits) in (0, len(probs))


class ScoreCache:
    """One teacher's scores by text: `text_a<TAB>text_b<TAB>label<TAB>probs<TAB>logits` lines after a
    first line `# {"teacher": ...}`. A cache of another teacher is replaced; a torn line is ignored.

    In memory it keeps only a 64-bit hash of each key and where its line lies (about 100 bytes a
    row, whatever the texts' length); a hit reads its line back from the file.

    `append_to` (one rank of a distributed job) sends new scores to that file instead: the shared
    cache is only read, and rank 0 folds every rank's file into it (`merge`) when all have finished."""

    def __init__(self, path: str | Path, teacher_id: str, append_to: str | Path | None = None) -> None:
        self.path = Path(path)
        self.out = Path(append_to) if append_to else self.path
        self.teacher = teacher_id
        self.index: dict[int, int] = {}  # key hash -> 2 * byte offset of its line + (1 if in `out`, else 0)
        self.files = [self.path, self.out]
        if self.out != self.path:
            self._load(self.path, 0)
        if self._ours(self.out):
            self._load(self.out, 1)
        else:
            if self.out.exists():
                log.info(f"label: {self.out} holds another teacher's scores; starting a new cache")
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(f"{self._head()}\n", encoding="utf-8")
        self._readers: dict[int, object] = {}

    def _head(self) -> str:
        return "# " + json.dumps({"teacher": self.teacher})

    def _ours(self, path: Path) -> bool:
        if not path.exists():
            return False
        with open(path, "rb") as f:  # bytes: a damaged first line is another file, not a decoding error
            return f.readline().rstrip(b"\n") == self._head().encode("utf-8")

    def _load(self, path: Path, which: int) -> None:
        if not self._ours(path):
            if path.exists():
                log.info(f"label: {path} holds another teacher's scores; not reading it")
            return
        with open(path, "rb") as f:
            offset = len(f.readline())
            for raw in f:
                if raw.endswith(b"\n") and raw.count(b"\t") == 4:
                    try:
                        a, b, _ = raw.decode("utf-8").split("\t", 2)
                    except UnicodeDecodeError:  # a damaged line is left out, like a torn one
                        pass
                    else:
                        self.index[_key_hash(a, b)] = 2 * offset + which
                offset += len(raw)

    def _line(self, where: int) -> list[str]:
        which, offset = where % 2, where // 2
        f = self._readers.get(which)
        if f is None:
            f = self._readers[which] = open(self.files[which], "rb")  # noqa: SIM115 - kept open for hits
        f.seek(offset)
        return f.readline().decode("utf-8", "replace").rstrip("\n").split("\t")

    def get(self, a: str, b: str | None) -> tuple[str, str, str] | None:
        key = (clean_field(a), clean_field(b or ""))
        where = self.index.get(_key_hash(*key))
        if where is None:
            return None
        parts = self._line(where)
        if (parts[0], parts[1]) != key or not _scores_ok(parts[2:]):
            return None  # a collision or a damaged line: scored again, and the new line answers next time
        return parts[2], parts[3], parts[4]

    def add(self, rows: list[tuple[str, str | None, str, str, str]]) -> None:
        """Append (text_a, text_b, label, probs, logits) rows, durably."""
        keyed = []  # (key hash, line bytes)
        for a, b, lab, p, z in rows:
            key = (clean_field(a), clean_field(b or ""))
            keyed.append((_key_hash(*key), ("\t".join((*key, lab, p, z)) + "\n").encode("utf-8")))
        with open(self.out, "a+b") as f:  # appends whatever the position; reads where seek says
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a torn last line (a killed writer) must not swallow the next row
                f.write(b"\n")
            offset = f.seek(0, os.SEEK_END)
            for h, line in keyed:
                self.index[h] = 2 * offset + 1
                offset += len(line)
            f.write(b"".join(line for _, line in keyed))
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        for f in self._readers.values():
            f.close()
        self._readers.clear()

    def merge(self, logs: list[Path]) -> int:
        """Append the complete lines of other caches of this teacher (ranks' files), then delete them."""
        n = 0
        with open(self.out, "a", encoding="utf-8", newline="\n") as out:
            for path in logs:
                if self._ours(path):
                    with open(path, encoding="utf-8") as f:
                        next(f)
                        lines = [line for line in f if line.endswith("\n") and line.count("\t") == 4]
                    out.write("".join(lines))
                    n += len(lines)
            out.flush()
            os.fsync(out.fileno())
        for path in logs:
            path.unlink(missing_ok=True)
        return n
