"""Micro-batching: requests that arrive together share one forward pass.

Each request puts its texts on a queue and awaits its rows of the answer. One task takes the waiting
requests, up to `max_batch` texts, once the batch is full or its oldest request has waited `max_wait`
seconds (requests that queued while the model ran have waited already and go at once), and runs
the model on them in a worker thread, so the event loop keeps reading requests meanwhile: those form
the next batch. A request is never split: one larger than `max_batch` runs alone (the predictor cuts
it into its own batches).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..log import logger as _root

log = _root.getChild("serve")

Predict = Callable[[list[str], "list[str] | None"], np.ndarray]  # (texts_a, texts_b) -> probabilities [N, C]


class ShuttingDown(RuntimeError):
    """The batcher is stopping and takes no new requests."""


@dataclass
class _Item:
    texts_a: list[str]
    texts_b: list[str] | None
    future: asyncio.Future = field(repr=False)
    arrived: float = 0.0


@dataclass
class Stats:
    requests: int = 0
    texts: int = 0
    batches: int = 0
    model_seconds: float = 0.0


class MicroBatcher:
    """`await batcher.submit(texts_a, texts_b)` -> that request's probabilities; `start()` and `stop()` in the
    server's lifespan (stop answers everything already queued, then ends the worker thread)."""

    def __init__(self, predict: Predict, max_batch: int = 256, max_wait: float = 0.002) -> None:
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait
        self.stats = Stats()
        self._items: deque[_Item] = deque()
        self._texts = 0  # texts in _items
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="datadistill-model")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="datadistill-batcher")

    async def stop(self) -> None:
        """Take no new requests, answer the queued ones, end the worker thread."""
        if self._closed or self._wake is None:
            return
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        log.debug(f"batcher stopped: {self.stats}")

    @property
    def queued(self) -> int:
        """Requests waiting for a forward pass."""
        return len(self._items)

    async def submit(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        if self._closed or self._wake is None:
            raise ShuttingDown("the server is shutting down")
        loop = asyncio.get_running_loop()
        item = _Item(texts_a, texts_b, loop.create_future(), loop.time())
        self._items.append(item)
        self._texts += len(texts_a)
        self._wake.set()
        return await item.future

    async def _run(self) -> None:
        assert self._wake is not None
        loop, wake, items = asyncio.get_running_loop(), self._wake, self._items
        while items or not self._closed:
            if not items:
                wake.clear()
                await wake.wait()
                continue
            # wait for a full batch, or until the oldest request has waited max_wait
            while self._texts < self.max_batch and not self._closed:
                left = items[0].arrived + self.max_wait - loop.time()
                if left <= 0:
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = [items.popleft()]
            n = len(batch[0].texts_a)
            while items and n + len(items[0].texts_a) <= self.max_batch:
                n += len(items[0].texts_a)
                batch.append(items.popleft())
            self._texts -= n
            await self._answer(loop, batch)

    async def _answer(self, loop: asyncio.AbstractEventLoop, items: list[_Item]) -> None:
        live = [it for it in items if not it.future.done()]  # a client that went away is not waited for
        if not live:
            return
        texts_a = [t for it in live for t in it.texts_a]
        texts_b = [t for it in live for t in it.texts_b] if live[0].texts_b is not None else None
        t0 = time.perf_counter()
        try:
            probs = await loop.run_in_executor(self._executor, self.predict, texts_a, texts_b)
        except Exception as e:  # noqa: BLE001 - every waiting request gets the error, the batcher goes on
            for it in live:
                if not it.future.done():
                    it.future.set_exception(e)
            return
        s = self.stats
        s.requests, s.texts, s.batches = s.requests + len(live), s.texts + len(texts_a), s.batches + 1
        s.model_seconds += time.perf_counter() - t0
        start = 0
        for it in live:
            end = start + len(it.texts_a)
            if not it.future.done():
                it.future.set_result(probs[start:end])
            start = end
