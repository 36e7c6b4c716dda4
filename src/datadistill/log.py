"""One logger for the package, and progress that suits where the output goes.

Every module logs through `logging.getLogger("datadistill.<module>")`; the command line sets the
format and level once (`setup_logging`, `-v`/`-q`). Library users configure `logging` as usual.

`Progress` shows a tqdm bar on a terminal; without one (a job writing to a log file) it logs a line
with the amount done, the rate and the time left at most once every `every` seconds, so a long step
never goes silent.
"""

from __future__ import annotations

import collections
import logging
import sys
import time

logger = logging.getLogger("datadistill")
PROGRESS_EVERY = 60.0  # seconds between progress log lines when there is no bar


class _StderrHandler(logging.StreamHandler):
    """Writes to the current `sys.stderr` (tests and notebooks swap it), not the one at set-up time."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _Formatter(logging.Formatter):
    """Plain messages at INFO (what a user reads); 'warning: ' before warnings; times and names with -v."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(message)s", datefmt="%H:%M:%S"
        )
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.verbose and record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        return text


def setup_logging(verbosity: int = 0) -> None:
    """-1: warnings only (-q); 0: progress and results (default); 1: debug, with times and module names (-v)."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    for h in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(verbose=verbosity > 0))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class Progress:
    """A tqdm bar when `bar` is true, else a log line at most every `every` seconds.

    The log line reads `DESC: DONE of TOTAL UNITs (P %), RATE UNITs/s, about T left` (`of about` when
    the total is an estimate); `note()` adds the caller's own words (e.g. cache hits). RATE and T come
    from the last RECENT log lines, not the whole run: a label run that reads its first half from the
    score cache in a minute would otherwise promise minutes where the teacher needs an hour.
    """

    RECENT = 5  # log lines (about five minutes at the default interval) the rate is measured over

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        bar: bool,
        initial: int = 0,
        every: float | None = None,
        log: logging.Logger | None = None,
        total_is_estimate: bool = False,
    ) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.every = PROGRESS_EVERY if every is None else every
        self.done = initial
        self.log = log or logger
        self.estimate = total_is_estimate
        self.last = time.perf_counter()
        self.marks = collections.deque([(self.last, initial)], maxlen=self.RECENT + 1)  # (time, done) per line
        self.extra = ""
        self.bar = None
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, leave=False)

    def note(self, text: str) -> None:
        """Words added to the next log lines (after the percentage)."""
        self.extra = text

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(**postfix, refresh=False)
            return
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self.log.info(self.line(now, postfix))

    def line(self, now: float, postfix: dict | None = None) -> str:
        then, done_then = self.marks[0]
        rate = (self.done - done_then) / max(now - then, 1e-9)
        self.marks.append((now, self.done))
        text = f"{self.desc}: {self.done:,}"
        if self.total:
            text += (
                f" of {'about ' if self.estimate else ''}{self.total:,} {self.unit}s "
                f"({100 * self.done / self.total:.0f} %)"
            )
        else:
            text += f" {self.unit}s"
        if self.extra:
            text += f", {self.extra}"
        text += f", {rate:,.1f} {self.unit}s/s"
        if self.total and rate and self.total > self.done:
            text += f", about {duration((self.total - self.done) / rate)} left"
        if postfix:
            text += "; " + " ".join(f"{k} {v}" for k, v in postfix.items())
        return text

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
