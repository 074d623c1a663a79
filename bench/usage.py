"""Usage recording: how many records/s the batching writer sustains (SQLite, PostgreSQL),
and what recording costs the gateway (issue: usage and cost accounting).

Targets: the writer sustains ≥ 2,000 records/s on each backend. Also measured: how long
the event loop is held while a batch is written, and what one ``record()`` call costs.
``record()`` is timed without and with the usage journal (one ``write`` a record). The
gateway figures put one worker without recording (``record`` patched to a no-op) next
to workers recording with the default flush interval (1 s) — with the journal (the
default) and without it (target: req/s within 5%) — and a short one (0.05 s), and the
upstream called directly; the rows written are counted after each worker's clean
shutdown.

PostgreSQL: ``MODELYARD_BENCH_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); a database is created and dropped.
Run alone with ``python -m bench.usage [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.databases import PostgresUnavailable, postgres_settings, sqlite_settings
from bench.processes import background, cpu_seconds, free_port, load, pin, split_cpus
from modelyard.config import Settings
from modelyard.db.engine import Database, create_database
from modelyard.usage.events import UsageEvent
from modelyard.usage.journal import UsageJournal
from modelyard.usage.recorder import DEFAULT_BATCH_SIZE, UsageRecorder

__all__ = ["report", "run"]

MODEL = "openai_compatible/bench-model"
#: Events recorded per turn of the producer loop before it yields to the writer.
PRODUCER_BURST = 250


def _event(i: int) -> UsageEvent:
    return UsageEvent(
        endpoint="chat",
        model="gpt-4o-mini",
        status=200 if i % 20 else 502,
        request_id=uuid.uuid4().hex,
        route=None,
        provider="openai",
        upstream_model="gpt-4o-mini",
        input_tokens=12 + i % 100,
        output_tokens=6 + i % 50,
        cost_usd=Decimal("0.0000054"),
        latency_ms=5 + i % 30,
        attempts=1,
    )


async def _longest_pause(stop: asyncio.Event) -> float:
    """The longest wait for the event loop (seconds) until ``stop`` is set."""
    longest = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0)
        longest = max(longest, time.perf_counter() - started)
    return longest


async def _loop_stall(recorder: UsageRecorder, rounds: int = 30) -> float:
    """The longest the event loop waits while one full batch is written (median, ms)."""
    stalls = []
    for round_ in range(rounds):
        for i in range(recorder.batch_size):
            recorder.record(_event(round_ * recorder.batch_size + i))
        stop = asyncio.Event()
        watcher = asyncio.create_task(_longest_pause(stop))
        await asyncio.sleep(0)
        await recorder.flush()
        stop.set()
        stalls.append(await watcher * 1000)
    return statistics.median(stalls)


def _record_cost_us(database: Database, *, journal: bool = False) -> float:
    """Microseconds one ``record()`` call takes (the request path's whole share), with
    or without the journal."""
    event = _event(1)
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(5):
            log = UsageJournal(Path(tmp) / str(round_)) if journal else None
            # Never started nor flushed.
            recorder = UsageRecorder(database, flush_interval=60, journal=log)
            started = time.perf_counter()
            for _ in range(10_000):
                recorder.record(event)
            best = min(best, time.perf_counter() - started)
            if log is not None:
                log.close()
    return best / 10_000 * 1e6


async def _drive(settings: Settings, events: int) -> dict[str, Any]:
    """Record ``events`` as fast as a producer can while the writer runs; time the lot.
    Then the loop stall per batch, and the cost of one ``record()``."""
    database = create_database(settings)
    recorder = UsageRecorder(database, flush_interval=0.05)
    await recorder.start()
    peak = 0
    started = time.perf_counter()
    try:
        for i in range(events):
            recorder.record(_event(i))
            if i % PRODUCER_BURST == PRODUCER_BURST - 1:
                peak = max(peak, recorder.pending)
                await asyncio.sleep(0)
        await recorder.aclose()
        elapsed = time.perf_counter() - started
        written = recorder.written
        stall_ms = await _loop_stall(UsageRecorder(database, flush_interval=60))
        record_us = _record_cost_us(database)
        journal_us = _record_cost_us(database, journal=True)
    finally:
        await database.dispose()
    return {
        "stall_ms": stall_ms,
        "record_us": record_us,
        "journal_us": journal_us,
        "events": events,
        "written": written,
        "dropped": recorder.dropped,
        "peak_pending": peak,
        "seconds": elapsed,
        "rps": written / elapsed,
    }


def recorder_sqlite(events: int) -> dict[str, Any]:
    with sqlite_settings() as settings:
        return asyncio.run(_drive(settings, events))


def recorder_postgres(events: int) -> dict[str, Any]:
    """The same on PostgreSQL, in a database of its own (``{"error": …}`` when unreachable)."""
    try:
        with postgres_settings() as settings:
            return asyncio.run(_drive(settings, events))
    except PostgresUnavailable as error:
        return {"error": str(error)}


def _modelyard(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


#: ``modelyard serve`` with ``UsageRecorder.record`` a no-op: the baseline without recording
#: (one worker runs in this very process, so the patch holds).
SERVE_WITHOUT_RECORDING = (
    "import sys; from modelyard.usage.recorder import UsageRecorder; "
    "UsageRecorder.record = lambda self, event: None; "
    "sys.argv = ['modelyard', 'serve', '--workers', '1']; "
    "from modelyard.cli import main; main()"
)
#: Alternating runs with and without the journal (each on a fresh worker).
JOURNAL_ROUNDS = 7
#: Gateway variants: name → (label, usage flush interval, records usage, journal).
VARIANTS: dict[str, tuple[str, float, bool, bool]] = {
    "off": ("no recording", 1.0, False, False),
    "default": ("recording, flush 1 s, journal (default)", 1.0, True, True),
    "no_journal": ("recording, flush 1 s, no journal", 1.0, True, False),
    "frequent": ("recording, flush 0.05 s, journal", 0.05, True, True),
}


def _gateway(
    upstream_port: int,
    flush_seconds: float,
    record: bool,
    journal: bool,
    n: int,
    cpus: set[int] | None = None,
) -> dict[str, Any]:
    """One worker on SQLite (on ``cpus`` when given): latency at 1 client, load at 64;
    then the rows it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        port = free_port()
        config = data / "modelyard.yaml"
        config.write_text(
            "providers:\n  - name: bench upstream\n    kind: openai_compatible\n"
            f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.update(
            MODELYARD_DATA_DIR=str(data),
            MODELYARD_PORT=str(port),
            MODELYARD_CONFIG=str(config),
            MODELYARD_LOG_LEVEL="WARNING",
            MODELYARD_NEW_PASSWORD="bench-password-1",
            MODELYARD_USAGE_FLUSH_SECONDS=str(flush_seconds),
            MODELYARD_USAGE_JOURNAL=str(journal).lower(),
        )
        _modelyard(env, "setup")
        _modelyard(env, "users", "create", "bench@example.com")
        token = _modelyard(env, "tokens", "create", "--user", "bench@example.com").strip()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        if record:
            app_cmd = [sys.executable, "-m", "modelyard", "serve", "--workers", "1"]
        else:
            app_cmd = [sys.executable, "-c", SERVE_WITHOUT_RECORDING]
        sent = 0
        with background(app_cmd, env=env, ready_url=f"http://127.0.0.1:{port}/healthz") as server:
            if cpus is not None:
                pin(server.pid, cpus)

            def measure(requests: int, concurrency: int) -> dict[str, Any]:
                nonlocal sent
                sent += requests
                return load(
                    url, token=token, model=MODEL, requests=requests, concurrency=concurrency
                )

            measure(200, 8)  # warm-up
            serial = measure(n, 1)
            before = cpu_seconds(server.pid)
            loaded = measure(n * 2, 64)
            time.sleep(flush_seconds + 0.2)  # the writer's last batch counts too
            cpu_us = (cpu_seconds(server.pid) - before) / (n * 2) * 1e6
        # The worker has shut down cleanly: everything it queued is in the table now.
        with sqlite3.connect(data / "modelyard.db") as db:
            (rows,) = db.execute("SELECT count(*) FROM usage_records").fetchone()
    return {"serial": serial, "loaded": loaded, "cpu_us": cpu_us, "sent": sent, "rows": rows}


def gateway_cost(quick: bool = False) -> dict[str, Any]:
    """The upstream alone, then one worker per variant in front of it."""
    n = 300 if quick else 2500
    upstream_port = free_port()
    upstream_cmd = [sys.executable, "-m", "bench.upstream", str(upstream_port)]
    with background(
        upstream_cmd, ready_url=f"http://127.0.0.1:{upstream_port}/v1/models"
    ) as upstream:
        direct_url = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        figures: dict[str, Any] = {
            "direct": {
                "serial": load(direct_url, requests=n, concurrency=1),
                "loaded": load(direct_url, requests=n * 2, concurrency=64),
            }
        }
        for name, (_label, flush_seconds, record, journal) in VARIANTS.items():
            figures[name] = _gateway(upstream_port, flush_seconds, record, journal, n)
        figures["journal_rounds"] = _journal_rounds(upstream.pid, upstream_port, n, quick)
    return figures


def _journal_rounds(upstream_pid: int, upstream_port: int, n: int, quick: bool) -> dict[str, Any]:
    """req/s and worker CPU per request at 64 clients with and without the journal,
    alternating ``JOURNAL_ROUNDS`` times. Unpinned, one run of each swings by 15-30% on
    2 shared cores (the server, the load generator and the upstream take turns on them),
    far more than the journal's few microseconds a request; so each worker has a CPU of
    its own and everything else shares the others, and the medians compare."""
    split = split_cpus()
    rounds = 1 if quick else JOURNAL_ROUNDS
    runs: dict[str, Any] = {"default": [], "no_journal": [], "pinned": split is not None}
    server_cpus = None
    if split is not None:
        server_cpus, rest = split
        pin(0, rest)  # this process and what it starts from now on: the load generators
        pin(upstream_pid, rest)
    try:
        for _ in range(rounds):
            for name in ("default", "no_journal"):
                _label, flush_seconds, record, journal = VARIANTS[name]
                figures = _gateway(upstream_port, flush_seconds, record, journal, n, server_cpus)
                rps, cpu_us = figures["loaded"]["rps"], figures["cpu_us"]
                # The share of its CPU the worker used: near 1, it was the bottleneck.
                runs[name].append({"rps": rps, "cpu_us": cpu_us, "busy": rps * cpu_us / 1e6})
    finally:
        if split is not None:
            everything = split[0] | split[1]
            pin(0, everything)
            pin(upstream_pid, everything)
    return runs


def run(quick: bool = False) -> dict[str, Any]:
    """Measure and return the figures (``quick`` for a smoke run)."""
    events = 5_000 if quick else 50_000
    return {
        "sqlite": recorder_sqlite(events),
        "postgres": recorder_postgres(events),
        "gateway": gateway_cost(quick),
    }


def _writer_cell(figures: dict[str, Any]) -> str:
    if "error" in figures:
        return f"skipped: {figures['error']}"
    return f"{figures['rps']:,.0f}"


def _cell(figures: dict[str, Any], key: str, unit: str) -> str:
    return "n/a" if "error" in figures else f"{figures[key]:.2f} {unit}"


def _written_cell(figures: dict[str, Any]) -> str:
    if "error" in figures:
        return "n/a"
    return f"{figures['written']:,} / {figures['events']:,} (dropped {figures['dropped']})"


def report(figures: dict[str, Any]) -> str:
    """The Markdown section for the figures."""
    sqlite, postgres, gateway = figures["sqlite"], figures["postgres"], figures["gateway"]
    lines = [
        f"## Usage recording (batching writer: {DEFAULT_BATCH_SIZE} rows a transaction)",
        "",
        "| measure | SQLite | PostgreSQL | target |",
        "| --- | ---: | ---: | --- |",
        f"| records/s sustained (timer 0.05 s) | {_writer_cell(sqlite)} "
        f"| {_writer_cell(postgres)} | ≥ 2,000/s each |",
        f"| written / recorded | {_written_cell(sqlite)} | {_written_cell(postgres)} | all |",
        f"| event loop held per batch written (median) | {_cell(sqlite, 'stall_ms', 'ms')} "
        f"| {_cell(postgres, 'stall_ms', 'ms')} | - |",
        f"| one `record()` call (the request path's share) | {_cell(sqlite, 'record_us', 'µs')} "
        f"| {_cell(postgres, 'record_us', 'µs')} | - |",
        f"| one `record()` call with the journal | {_cell(sqlite, 'journal_us', 'µs')} "
        f"| {_cell(postgres, 'journal_us', 'µs')} | microseconds |",
        "",
        "Gateway with and without usage recording (one worker, SQLite, fake upstream on "
        "127.0.0.1):",
        "",
        "| measure | direct | " + " | ".join(label for label, *_ in VARIANTS.values()) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in VARIANTS) + " |",
    ]
    columns = [gateway["direct"], *(gateway[name] for name in VARIANTS)]
    for label, run_name, key in (
        ("p50, 1 client", "serial", "p50_ms"),
        ("p99, 1 client", "serial", "p99_ms"),
        ("p99, 64 clients", "loaded", "p99_ms"),
        ("req/s, 64 clients", "loaded", "rps"),
        ("worker CPU per request, 64 clients", "", "cpu_us"),
    ):
        if key == "cpu_us":
            cells = ["n/a"] + [f"{gateway[name]['cpu_us']:.0f} µs" for name in VARIANTS]
        elif key == "rps":
            cells = [f"{column[run_name][key]:,.0f}" for column in columns]
        else:
            cells = [f"{column[run_name][key]:.2f} ms" for column in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    rows = [f"{gateway[name]['rows']:,} / {gateway[name]['sent']:,}" for name in VARIANTS]
    lines.append("| usage rows / requests sent | n/a | " + " | ".join(rows) + " |")
    rounds = gateway["journal_rounds"]

    def middle(name: str, key: str) -> float:
        return statistics.median(run[key] for run in rounds[name])

    with_journal, without = middle("default", "rps"), middle("no_journal", "rps")
    cpu_with, cpu_without = middle("default", "cpu_us"), middle("no_journal", "cpu_us")
    runs = len(rounds["default"])
    where = "each worker on a CPU of its own" if rounds["pinned"] else "unpinned (one CPU)"
    lines += [
        "",
        f"The journal's cost at 64 clients, medians of {runs} alternating runs each ({where}): "
        f"{with_journal:,.0f} req/s with it, {without:,.0f} without "
        f"({(with_journal / without - 1) * 100:+.1f}%; target: within 5%); worker CPU "
        f"{cpu_with:.0f} µs per request with it, {cpu_without:.0f} µs without "
        f"({(cpu_with / cpu_without - 1) * 100:+.1f}%); the worker kept its CPU "
        f"{middle('default', 'busy'):.0%} / {middle('no_journal', 'busy'):.0%} busy.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    print(report(run(quick=args.quick)))


if __name__ == "__main__":
    main()
