"""What ``/metrics`` serves: one process's metrics, or every worker's together.

With one worker, the app's registry as it is. With several (``modelyard serve --workers
N`` sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory for them), prometheus_client's
multiprocess mode: every Counter and Histogram keeps its values in per-process files
there, and whichever worker answers the scrape sums all of them
(``MultiProcessCollector``). The figures that collectors compute when scraped — the usage
recorder's counters and journal depth, the GC and event-loop probes — live in one process
only, so each worker copies them into multiprocess gauges once a second
(:data:`MIRROR_INTERVAL_SECONDS`) and before answering a scrape: counters and amounts are
summed over the workers (a dead worker's last counts included), ages and worst lags are
the workers' maximum. Their names stay; their type reads ``gauge``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Literal

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = ["MIRROR_INTERVAL_SECONDS", "MULTIPROCESS_ENV", "MetricsExposition"]

#: The directory prometheus_client's multiprocess mode keeps its files in.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How often a worker copies its computed figures into the shared gauges.
MIRROR_INTERVAL_SECONDS = 1.0

#: One gauge per mirrored sample name, for the whole process (several apps in one
#: process, as in tests, share them).
_GAUGES: dict[str, Gauge] = {}


_Mode = Literal["livemax", "sum", "livesum"]


def _mode(name: str, kind: str) -> _Mode:
    if name.endswith("_max_seconds") or "oldest" in name:
        return "livemax"
    return "sum" if kind == "counter" else "livesum"


class MetricsExposition:
    """Renders ``/metrics`` for this process (see the module's docstring)."""

    def __init__(self, registry: CollectorRegistry, *, directory: str | None = None) -> None:
        self.registry = registry
        self.computed: list[Collector] = []
        self.directory = directory if directory is not None else os.environ.get(MULTIPROCESS_ENV)
        self._task: asyncio.Task[None] | None = None

    def add_computed(self, collector: Collector) -> None:
        """Register a collector whose figures are computed when scraped."""
        self.registry.register(collector)
        self.computed.append(collector)

    @property
    def multiprocess(self) -> bool:
        return bool(self.directory)

    def mirror(self) -> None:
        """Copy the computed figures of this process into the shared gauges."""
        for collector in self.computed:
            for family in collector.collect():
                for sample in family.samples:
                    labels = sorted(sample.labels)
                    gauge = _GAUGES.get(sample.name)
                    if gauge is None:
                        gauge = Gauge(
                            sample.name,
                            family.documentation,
                            labelnames=labels,
                            registry=None,
                            multiprocess_mode=_mode(sample.name, family.type),
                        )
                        _GAUGES[sample.name] = gauge
                    target = gauge.labels(**sample.labels) if labels else gauge
                    target.set(sample.value)

    async def _mirror_forever(self) -> None:
        while True:
            self.mirror()
            await asyncio.sleep(MIRROR_INTERVAL_SECONDS)

    def start(self) -> None:
        """In multiprocess mode, mirror the computed figures from now on."""
        if self.multiprocess and self._task is None:
            self._task = asyncio.create_task(self._mirror_forever(), name="modelyard-metrics")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.mirror()  # the last counts of this worker stay in the sums

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        self.mirror()
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=self.directory)  # type: ignore[no-untyped-call]
        return generate_latest(combined)
