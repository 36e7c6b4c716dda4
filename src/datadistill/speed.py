"""Measure a predictor's speed the way a user meets it: texts in (tokenization included), labels out."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def throughput(predict: Callable[[list[str]], object], texts: list[str], min_seconds: float = 2.0) -> float:
    """Texts per second in batch mode: best of repeated full passes over `texts` (at least `min_seconds`)."""
    predict(texts[:64])  # warm-up
    best, spent = float("inf"), 0.0
    while spent < min_seconds:
        t0 = time.perf_counter()
        predict(texts)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return len(texts) / best


def latency(predict: Callable[[list[str]], object], texts: list[str], n: int = 300) -> tuple[float, float]:
    """(p50, p99) milliseconds to answer one text at a time."""
    for t in texts[:20]:
        predict([t])
    times = []
    for t in texts[:n]:
        t0 = time.perf_counter()
        predict([t])
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
