"""Measure a predictor's speed the way a user meets it: texts in (tokenization included), labels out."""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from .errors import ConfigError

MEASURE_ENV = "DATADISTILL_MEASURE_SECONDS"


def measure_seconds() -> float:
    """How long a throughput measurement runs at least: 2 s, or DATADISTILL_MEASURE_SECONDS (shorter for
    a test suite that writes many reports, whose speeds then say little)."""
    text = os.environ.get(MEASURE_ENV, "2")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{MEASURE_ENV} must be a number of seconds above 0, got {text!r}")
    return seconds


def throughput(predict: Callable[[list[str]], object], texts: list[str], min_seconds: float | None = None) -> float:
    """Texts per second in batch mode: best of repeated full passes over `texts` (at least `min_seconds`,
    default `measure_seconds()`)."""
    min_seconds = measure_seconds() if min_seconds is None else min_seconds
    predict(texts[:64])  # warm-up
    best, spent = float("inf"), 0.0
    while spent < min_seconds:
        t0 = time.perf_counter()
        predict(texts)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return len(texts) / best


def latency(predict: Callable[[list[str]], object], texts: list[str], n: int | None = None) -> tuple[float, float]:
    """(p50, p99) milliseconds to answer one text at a time, over n texts (default 150 per measuring
    second: 300)."""
    n = max(20, round(150 * measure_seconds())) if n is None else n
    for t in texts[:20]:
        predict([t])
    times = []
    for t in texts[:n]:
        t0 = time.perf_counter()
        predict([t])
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
