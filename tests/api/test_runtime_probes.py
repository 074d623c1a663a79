"""The runtime probes on ``/metrics``: garbage collections counted and timed per
generation, event-loop lag, the start-up heap frozen (``MODELYARD_GC_FREEZE``) and the
young generation's threshold (``MODELYARD_GC_YOUNG_THRESHOLD``)."""

from __future__ import annotations

import asyncio
import gc
import re
import time

import httpx

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.runtime_probes import GcProbe, LoopLagProbe
from tests.web.live import LiveServer


def metric(body: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", body, re.MULTILINE)
    assert match, f"{name}{labels} is not on /metrics"
    return float(match.group(1))


def test_collections_are_counted_and_timed_per_generation() -> None:
    probe = GcProbe()
    probe.install()
    try:
        gc.collect()
        gc.collect(0)
    finally:
        probe.uninstall()
    assert probe.collections[2] >= 1 and probe.collections[0] >= 1
    assert probe.pause_seconds[2] > 0
    counted = list(probe.collections)
    gc.collect()  # uninstalled: not counted
    assert probe.collections == counted


async def test_a_blocked_loop_shows_as_lag() -> None:
    probe = LoopLagProbe(interval=0.01)
    probe.start()
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # noqa: ASYNC251 - a stall, as a blocking call on the loop would be
    await asyncio.sleep(0.05)
    await probe.stop()
    assert probe.max_seconds >= 0.15
    assert probe.total_seconds >= probe.max_seconds and probe.samples >= 3


def test_the_server_freezes_its_heap_and_reports_both_probes(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"gc_freeze": True}), system_keys={})
    try:
        with LiveServer(app) as server:
            time.sleep(0.3)  # some lag samples
            gc.collect()
            body = httpx.get(f"{server.url}/metrics").text
    finally:
        gc.unfreeze()
    assert metric(body, "modelyard_gc_frozen_objects") > 10_000
    assert metric(body, "modelyard_gc_collections_total", '{generation="2"}') >= 1
    assert metric(body, "modelyard_gc_pause_seconds_total", '{generation="2"}') > 0
    assert metric(body, "modelyard_event_loop_lag_samples_total") >= 2
    assert metric(body, "modelyard_event_loop_lag_seconds_total") >= 0
    assert "modelyard_event_loop_lag_max_seconds" in body


def test_the_server_raises_the_young_threshold_while_it_serves(settings: Settings) -> None:
    before = gc.get_threshold()
    app = create_app(settings.model_copy(update={"gc_young_threshold": 12_345}), system_keys={})
    with LiveServer(app) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before


def test_fastapis_native_telemetry_is_off_unless_asked_for(settings: Settings) -> None:
    """Its per-request provider lookups cost every request; MODELYARD_OPENTELEMETRY turns
    it on (through the process's global OpenTelemetry providers)."""
    quiet = create_app(settings, system_keys={})
    assert not any(quiet._telemetry[part] for part in ("tracing", "metrics", "logs"))
    traced = create_app(settings.model_copy(update={"opentelemetry": True}), system_keys={})
    assert all(traced._telemetry[part] for part in ("tracing", "metrics", "logs"))
