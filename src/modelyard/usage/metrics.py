"""The usage recorder's counters on ``/metrics``: written, dropped, failed writes, pending."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from modelyard.usage.recorder import UsageRecorder

__all__ = ["UsageRecorderCollector"]


class UsageRecorderCollector(Collector):
    """Reads the recorder's counters when Prometheus scrapes (nothing on the hot path)."""

    def __init__(self, recorder: UsageRecorder) -> None:
        self.recorder = recorder

    def collect(self) -> Iterator[Any]:
        recorder = self.recorder
        yield CounterMetricFamily(
            "modelyard_usage_records_written",
            "Usage records written to the database.",
            value=recorder.written,
        )
        yield CounterMetricFamily(
            "modelyard_usage_records_dropped",
            "Usage records dropped because the queue was full.",
            value=recorder.dropped,
        )
        yield CounterMetricFamily(
            "modelyard_usage_write_failures",
            "Batch writes that failed (and were retried).",
            value=recorder.failed_writes,
        )
        yield GaugeMetricFamily(
            "modelyard_usage_records_pending",
            "Usage records queued and not yet written.",
            value=recorder.pending,
        )
