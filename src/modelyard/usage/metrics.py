"""The usage recorder's counters on ``/metrics``: written, dropped, failed writes, pending,
and its journal's depth and the age of the oldest record not yet written."""

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
        yield GaugeMetricFamily(
            "modelyard_usage_oldest_pending_seconds",
            "Age of the oldest usage record not yet written (0: none waits).",
            value=recorder.oldest_pending_seconds,
        )
        journal = recorder.journal
        yield GaugeMetricFamily(
            "modelyard_usage_journal_depth",
            "Usage records in this process's journal and not yet written (0 without one).",
            value=0 if journal is None else journal.depth,
        )
        yield CounterMetricFamily(
            "modelyard_usage_records_spilled",
            "Usage records kept in the journal only because the queue was full.",
            value=recorder.spilled,
        )
        yield CounterMetricFamily(
            "modelyard_usage_records_replayed",
            "Usage records written from journals left by dead processes.",
            value=recorder.replayed,
        )
        yield CounterMetricFamily(
            "modelyard_usage_journal_failures",
            "Usage records the journal could not take (kept in memory only).",
            value=recorder.journal_failures,
        )
