"""Load without loss (issue 12, reliability): 20,000 requests at 64 concurrent clients
through one ``modelyard serve`` worker, with a faulty upstream mix behind a failover route.

The scenario — which fakes, which faults, what is measured when — is
:mod:`tests.reliability.scenario`, the same code CI runs with 2,000 requests
(``tests/reliability/test_load.py``). Bars: every request answered 200; usage rows equal
requests (matched by request id); resident memory after the run within 50 MB of before
(both after a warm-up of the same mix); no growth in open file descriptors or established
connections once the server is idle again.

On SQLite, and on PostgreSQL when reachable (``MODELYARD_BENCH_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``; a database is created and dropped).
Run alone with ``python -m bench.reliability [--quick]``.
"""

from __future__ import annotations

import argparse

from tests.reliability.scenario import (
    SLOW_SECONDS,
    UPSTREAM_TIMEOUT,
    LoadReport,
    run_load,
)

from bench.databases import PostgresUnavailable, postgres_settings, sqlite_settings
from modelyard.config import Settings

__all__ = ["report", "run"]

CONCURRENCY = 64


def _sizes(quick: bool) -> tuple[int, int]:
    """Requests measured, and the warm-up's."""
    return (2_000, 500) if quick else (20_000, 2_000)


def _measure(settings: Settings, backend: str, quick: bool) -> LoadReport:
    requests, warmup = _sizes(quick)
    return run_load(
        settings,
        settings.data_dir / "server",
        requests=requests,
        concurrency=CONCURRENCY,
        warmup=warmup,
        backend=backend,
    )


def on_sqlite(quick: bool) -> LoadReport:
    with sqlite_settings() as settings:
        return _measure(settings, "sqlite", quick)


def on_postgres(quick: bool) -> LoadReport | str:
    """The same on PostgreSQL, in a database of its own (why not, when unreachable)."""
    try:
        with postgres_settings() as settings:
            return _measure(settings, "postgres", quick)
    except PostgresUnavailable as error:
        return str(error)


def run(quick: bool = False) -> dict[str, LoadReport | str]:
    """Measure and return the reports (``quick`` for a smoke run of 2,000 requests)."""
    return {"sqlite": on_sqlite(quick), "postgres": on_postgres(quick)}


def _mb(value: int) -> str:
    return f"{value / 2**20:.1f}"


def _connections(established: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(established.items())) or "none"


def _rows(r: LoadReport) -> list[tuple[str, str]]:
    answers = ", ".join(f"{status}: {n:,}" for status, n in r.load["statuses"].items())
    if r.load["transport_errors"]:
        answers += f", none: {r.load['transport_errors']:,}"
    faults = r.faults_injected
    failovers = r.metrics["failovers"]
    attempts = r.metrics["attempts"]
    problems = r.problems()
    return [
        ("answers by status", answers),
        (
            "requests/s · p50 · p99",
            f"{r.load['rps']:,.0f} · {r.load['p50_ms']:.0f} ms · {r.load['p99_ms']:.0f} ms",
        ),
        ("usage rows / requests (ids matched)", f"{r.rows:,} / {r.requests:,}"),
        (
            "resident memory before → after",
            f"{_mb(r.before.rss_bytes)} → {_mb(r.after.rss_bytes)} MB ({r.rss_growth_mb:+.1f})",
        ),
        ("open file descriptors before → after", f"{r.before.fds} → {r.after.fds}"),
        (
            "established connections before → after",
            f"{_connections(r.before.established)} → {_connections(r.after.established)}",
        ),
        (
            "faults met: 429 · 503 · slow",
            f"{faults['rate_limited']:,} · {faults['unavailable']:,} · {faults['slow']:,}",
        ),
        (
            "failovers: 429 · 5xx · timeout · refused",
            " · ".join(
                f"{failovers.get(k, 0):,.0f}"
                for k in ("rate_limited", "server", "timeout", "connection")
            ),
        ),
        ("targets skipped while cooling down", f"{attempts.get('skipped', 0):,.0f}"),
        ("answered by the healthy upstream", f"{r.served['healthy'].get('ok', 0):,}"),
        ("result", "pass" if not problems else "FAIL: " + "; ".join(problems)),
    ]


def report(reports: dict[str, LoadReport | str]) -> str:
    """The Markdown section for the reports."""
    measured = [r for r in reports.values() if isinstance(r, LoadReport)]
    first = measured[0] if measured else None
    size = (
        f"{first.requests:,} requests at {first.concurrency} concurrent clients "
        f"after a warm-up of {first.warmup:,}"
        if first
        else "not measured"
    )
    lines = [
        "## Load with a faulty upstream mix (one `modelyard serve` worker)",
        "",
        f"{size}. Route: three flaky OpenAI-compatible upstreams (each 10% 429 with "
        f"Retry-After 1, 10% 503, 5% answered after {SLOW_SECONDS:g} s, over the "
        f"{UPSTREAM_TIMEOUT:g} s upstream timeout), one upstream down (connection refused), "
        "then one healthy upstream. Fakes in the benchmark process, the server and the load "
        "generator in processes of their own; memory, descriptors and connections read from "
        "`/proc` with the server idle.",
        "",
        "| measure | " + " | ".join(reports) + " | bar |",
        "| --- | " + " | ".join("---:" for _ in reports) + " | --- |",
    ]
    bars = {
        "answers by status": "all 200",
        "usage rows / requests (ids matched)": "equal",
        "resident memory before → after": "≤ +50 MB",
        "open file descriptors before → after": "no growth",
        "established connections before → after": "no growth",
    }
    columns = [dict(_rows(v)) if isinstance(v, LoadReport) else {} for v in reports.values()]
    for label, _cell in _rows(first) if first else []:
        cells = [column.get(label, "n/a") for column in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {bars.get(label, '-')} |")
    for backend, value in reports.items():
        if isinstance(value, str):
            lines += ["", f"{backend}: skipped, {value}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    print(report(run(quick=args.quick)))


if __name__ == "__main__":
    main()
