"""An external program as teacher (Paddle ERNIE, an LLM client script, ...).

Protocol: the program is started once per batch, reads the batch's texts on stdin (one per line;
`text_a<TAB>text_b` for pairs), writes one line per text on stdout: `label` or
`label<TAB>p1 p2 ...` (probabilities in the order of `labels`), and exits 0. One start per batch
works with any program however it buffers its output; make batches large when start-up is slow.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ConfigError, check_ranges
from ..data.io import is_probability_row
from .base import Teacher, TeacherError, TeacherScores, register_teacher


SCRIPT_SUFFIXES = (".py", ".sh", ".pl", ".rb", ".js", ".R", ".jl", ".lua")


@dataclass
class CommandTeacherConfig:
    """The pipeline's `teacher` section for an external program (nothing to fine-tune)."""

    kind: str = "command"
    command: str = ""  # run without a shell: no pipes, $VAR or 'cd &&'
    labels: list[str] = field(default_factory=list)  # label names in probability order (default: the training labels)
    timeout: float = 600.0  # seconds one batch may take
    unk_token: str = "[UNK]"  # put where augmentation wrote [UNK]

    RANGES = {"timeout": (0, None, "open")}

    def validate(self) -> None:
        if self.kind != "command":
            raise ConfigError(f"kind must be 'command' for an external teacher, got '{self.kind}'")
        if not self.command.strip():
            raise ConfigError("command is required: the teacher program and its arguments, e.g. 'python my_teacher.py'")
        try:
            shlex.split(self.command)
        except ValueError as e:
            raise ConfigError(f"command cannot be split into arguments ({e}): check its quotes") from None
        check_ranges(self)


@register_teacher("command")
class CommandTeacher(Teacher):
    name = "command"
    config_class = CommandTeacherConfig

    @classmethod
    def load(
        cls,
        cfg: CommandTeacherConfig,
        folder: Path,
        batch_size: int,
        precision: str,
        device: str = "auto",
        labels: list[str] | None = None,
    ) -> "CommandTeacher":
        if cfg.labels and labels is not None and sorted(cfg.labels) != sorted(labels):
            raise ConfigError(f"teacher.labels {cfg.labels} are not the labels of the training data {labels}")
        return cls(
            cfg.command, labels=cfg.labels or labels, timeout=cfg.timeout, unk_token=cfg.unk_token, output_labels=labels
        )

    def __init__(
        self,
        command: str,
        labels: list[str] | None = None,
        timeout: float = 600.0,
        unk_token: str = "[UNK]",
        output_labels: list[str] | None = None,
    ) -> None:
        """`labels`: the program's label names in its probability order; `output_labels`: the order to
        return probabilities in (the same names), e.g. the data's label map."""
        if not command.strip():
            raise TeacherError("teacher command is empty")
        self.command = command
        try:
            self.argv = shlex.split(command)
        except ValueError as e:
            raise TeacherError(
                f"teacher command '{command}' cannot be split into arguments ({e}): check its quotes "
                f"(it runs without a shell)"
            ) from None
        if labels is not None and (any(not lab.strip() for lab in labels) or len(set(labels)) != len(labels)):
            raise TeacherError(f"teacher labels {','.join(labels)}: each label must be a name, and only once")
        self.program_labels = list(labels) if labels else None  # the order the program writes probabilities in
        self.label_names = list(output_labels or labels) if (output_labels or labels) else None
        self.order = None  # program column of each output label
        if output_labels and labels and list(output_labels) != list(labels):
            if sorted(output_labels) != sorted(labels):
                raise TeacherError(f"teacher labels {labels} are not the labels {output_labels}")
            self.order = [list(labels).index(lab) for lab in output_labels]
        self.timeout = timeout
        self.unk_token = unk_token

    def describe(self) -> str:
        """What the scores depend on: the command line, the content of the scripts it names (an edited
        `my_teacher.py` is another teacher), its label order and its unknown token."""
        from ..data.cache import file_digest

        scripts = [file_digest(a) for a in self.argv[1:] if Path(a).suffix in SCRIPT_SUFFIXES and Path(a).is_file()]
        return (
            f"command:{self.command}"
            + (f":scripts={','.join(scripts)}" if scripts else "")
            + f":labels={self.program_labels}:out={self.label_names}:unk={self.unk_token}"
        )

    def score(self, texts_a: list[str], texts_b: list[str] | None = None) -> TeacherScores:
        lines = texts_a if texts_b is None else [f"{a}\t{b}" for a, b in zip(texts_a, texts_b)]
        payload = "".join(line.replace("\n", " ") + "\n" for line in lines)
        try:
            proc = subprocess.run(
                self.argv, input=payload, capture_output=True, text=True, encoding="utf-8", timeout=self.timeout
            )
        except FileNotFoundError:
            raise TeacherError(f"teacher command '{self.command}': program '{self.argv[0]}' not found") from None
        except subprocess.TimeoutExpired:
            raise TeacherError(
                f"teacher command '{self.command}' gave no complete answer for a batch of "
                f"{len(lines)} texts within {self.timeout:g}s (stuck? raise the time-out)"
            ) from None
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            raise TeacherError(
                f"teacher command '{self.command}' exited with status {proc.returncode}"
                + (f": {' | '.join(tail)}" if tail else "")
            )
        out = proc.stdout.split("\n")
        if out and out[-1] == "":
            out.pop()
        if len(out) != len(lines):
            raise TeacherError(f"teacher command '{self.command}' answered {len(out)} lines for {len(lines)} texts")
        return self._parse(out, lines)

    def _parse(self, out: list[str], lines: list[str]) -> TeacherScores:
        labels: list[str] = []
        probs: list[list[float]] = []
        for i, line in enumerate(out):
            parts = line.rstrip("\r").split("\t")

            def bad(why: str, i: int = i, line: str = line) -> TeacherError:
                return TeacherError(
                    f"teacher command '{self.command}': answer {i + 1} of the batch ({line[:80]!r}) "
                    f"for text '{lines[i][:40]}' {why}"
                )

            label = parts[0].strip()
            if not label or len(parts) > 2:
                raise bad("is not 'label' or 'label<TAB>probabilities'")
            if self.label_names is not None and label not in self.label_names:
                raise bad(f"has label '{label}', not one of {', '.join(self.label_names)}")
            labels.append(label)
            if len(parts) == 2:
                try:
                    p = [float(x) for x in parts[1].split()]
                except ValueError:
                    raise bad("has probabilities that are not numbers") from None
                if self.label_names is not None and len(p) != len(self.label_names):
                    raise bad(f"has {len(p)} probabilities for {len(self.label_names)} labels")
                # what a student learns from: finite numbers in [0, 1] adding up to 1 (to rounding)
                if not is_probability_row(p):
                    raise bad("has scores that are not probabilities (numbers in [0, 1] adding up to 1)")
                probs.append(p)
        if probs and len(probs) != len(labels):
            raise TeacherError(f"teacher command '{self.command}' gave probabilities for some lines but not all")
        arr = np.asarray(probs, dtype=np.float64) if probs else None
        if arr is not None and (arr.ndim != 2 or len({len(p) for p in probs}) != 1):
            raise TeacherError(f"teacher command '{self.command}' gave probability lists of different lengths")
        if arr is not None and self.order is not None:
            arr = arr[:, self.order]  # [N, C] in the output label order
        return TeacherScores(labels=labels, probs=arr)
