"""Load through a real server with a faulty upstream mix: nothing lost, nothing leaked.

The lighter form of ``make bench``'s ``load`` section (see :mod:`tests.reliability.scenario`
for what runs where): 2,000 requests at 64 concurrent clients after a warm-up of 500.
"""

from __future__ import annotations

from pathlib import Path

from modelyard.config import Settings
from tests.reliability.scenario import run_load

REQUESTS = 2000
CONCURRENCY = 64
WARMUP = 500


def test_every_request_succeeds_is_recorded_and_nothing_leaks(
    settings: Settings, backend: str, tmp_path: Path
) -> None:
    report = run_load(
        settings,
        tmp_path / "server",
        requests=REQUESTS,
        concurrency=CONCURRENCY,
        warmup=WARMUP,
        backend=backend,
    )
    assert report.problems() == []
    # The faults really happened during the measured run, and each one made the gateway
    # move on to the next target (more failovers only if a healthy answer was ever late).
    faults = report.faults_injected
    assert min(faults["rate_limited"], faults["unavailable"], faults["slow"]) > 0, faults
    failovers = report.metrics["failovers"]
    assert failovers["rate_limited"] >= faults["rate_limited"], report.metrics
    assert failovers["server"] >= faults["unavailable"], report.metrics
    assert failovers["timeout"] >= faults["slow"], report.metrics
    # The upstream that is down was tried until its circuit breaker opened.
    assert report.metrics_total["failovers"]["connection"] >= 3, report.metrics_total
    assert report.metrics["attempts"]["skipped"] > 0
