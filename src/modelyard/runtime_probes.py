"""What the Python runtime costs a serving process: garbage-collection pauses and
event-loop lag, on ``/metrics``; and the start-up heap frozen out of the collector.

* :class:`GcProbe` times every collection through :data:`gc.callbacks` (two clock reads
  a collection, nothing per request): counts and total pause per generation.
* :class:`LoopLagProbe` sleeps :data:`LAG_INTERVAL_SECONDS` in a task and counts how late
  it wakes: a stalled loop (a long collection, a blocking call) shows as lag.
* :func:`freeze_startup_heap` moves everything alive after start-up (modules, routes,
  settings, the ORM's metadata) to the permanent generation, so full collections under
  load walk only what requests allocate instead of the whole start-up heap again.
* :func:`young_threshold` raises the allocation count that starts a young collection.
  Python's 700 is reached inside the allocation burst of a few concurrent requests, whose
  live objects the collection then walks for nothing (they are freed by reference
  counting moments later); ``bench.profile`` measured 4 to 8% of a worker's CPU in such
  collections at 16 and 64 clients. Garbage in reference cycles still starts one once that
  many objects have piled up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "LAG_INTERVAL_SECONDS",
    "GcProbe",
    "LoopLagProbe",
    "freeze_startup_heap",
    "young_threshold",
]

#: How often the loop-lag task wakes.
LAG_INTERVAL_SECONDS = 0.05
GENERATIONS = (0, 1, 2)


def freeze_startup_heap() -> int:
    """Collect once, then freeze what is left (see the module's docstring); the number of
    objects now outside the collector's reach."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextlib.contextmanager
def young_threshold(allocations: int) -> Iterator[None]:
    """Young collections every ``allocations`` net allocations while inside (``0``: leave
    the collector as it is); the thresholds before are restored after."""
    before = gc.get_threshold()
    if allocations:
        gc.set_threshold(allocations, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class GcProbe(Collector):
    """Counts and times garbage collections per generation while installed."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.pause_seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self.collections[generation] += 1
        self.pause_seconds[generation] += time.perf_counter() - self._started

    def install(self) -> None:
        """Start counting (idempotent)."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop counting."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def collect(self) -> Iterator[Any]:
        collections = CounterMetricFamily(
            "modelyard_gc_collections",
            "Garbage collections of this process, by generation.",
            labels=["generation"],
        )
        pauses = CounterMetricFamily(
            "modelyard_gc_pause_seconds",
            "Time this process spent in garbage collections, by generation.",
            labels=["generation"],
        )
        for generation in GENERATIONS:
            collections.add_metric([str(generation)], self.collections[generation])
            pauses.add_metric([str(generation)], self.pause_seconds[generation])
        yield collections
        yield pauses
        yield GaugeMetricFamily(
            "modelyard_gc_frozen_objects",
            "Objects frozen after start-up (outside the collector's reach).",
            value=gc.get_freeze_count(),
        )


class LoopLagProbe(Collector):
    """How late the event loop runs a timer: total and worst lag since start."""

    def __init__(self, interval: float = LAG_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self.total_seconds = 0.0
        self.max_seconds = 0.0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            expected = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, time.perf_counter() - expected)
            self.samples += 1
            self.total_seconds += lag
            self.max_seconds = max(self.max_seconds, lag)

    def start(self) -> None:
        """Start the probe's task on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="modelyard-loop-lag")

    async def stop(self) -> None:
        """Stop the probe's task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def collect(self) -> Iterator[Any]:
        yield CounterMetricFamily(
            "modelyard_event_loop_lag_seconds",
            f"Total time the event loop ran its timers late (sampled every {self.interval:g} s).",
            value=self.total_seconds,
        )
        yield CounterMetricFamily(
            "modelyard_event_loop_lag_samples",
            "Timer wake-ups the lag was measured on.",
            value=self.samples,
        )
        yield GaugeMetricFamily(
            "modelyard_event_loop_lag_max_seconds",
            "The longest the event loop ran a timer late since start.",
            value=self.max_seconds,
        )
