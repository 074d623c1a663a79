"""Load through the gateway with a faulty upstream mix, measured on a real server process.

Shared by ``tests/reliability/test_load.py`` (2,000 requests in CI) and the ``load``
section of ``make bench`` (``bench/reliability.py``, 20,000 requests). What runs where:

* the fakes (:mod:`tests.fakes.faulty`) serve from threads of this process: three flaky
  OpenAI-compatible upstreams (10% 429 with ``Retry-After``, 10% 503, 5% slower than the
  gateway's upstream timeout), one upstream that is down (a closed port), and one healthy
  upstream;
* ``modelyard serve`` (one worker) is its own process, measured through ``/proc``;
* the load generator (``python -m bench.load``) is its own process too, so neither the
  fakes nor the measuring share the event loop or the GIL with what is measured.

One route, ``faulty-mix``, lists the ``openai_compatible`` providers (flaky 1, down,
flaky 2, flaky 3, in that priority) and then the healthy ``openai`` provider, so every
request has a healthy target. Memory, open file descriptors and established connections
of the server are read after a warm-up of the same mix and again after the measured
run, each time once the server is idle (clients gone, upstream keep-alive connections
expired). The measured run's usage rows are matched against the request ids it sent,
and all rows (the warm-up's too) are counted, again after a clean stop.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, make_url, select

from modelyard.cli.common import run_with_database
from modelyard.config import Settings
from modelyard.db.engine import POOL_SIZE, Database
from modelyard.db.models import UsageRecord
from tests.fakes.faulty import FaultPlan, FaultyOpenAI
from tests.fakes.server import closed_port
from tests.helpers import make_token, make_user
from tests.polling import poll_sync
from tests.reliability.procfs import established_by_peer, fd_count, rss_bytes
from tests.reliability.server import ServerProcess, server_env

__all__ = [
    "MODEL",
    "ROUTE",
    "LoadReport",
    "Snapshot",
    "Upstreams",
    "faulty_upstreams",
    "make_accounts",
    "run_load",
]

REPO = Path(__file__).resolve().parents[2]
MODEL = "gpt-4o-mini"
ROUTE = "faulty-mix"
UPSTREAM_KEY = "sk-reliability-upstream-0123456789"
#: The gateway gives up on one upstream call after this long (``MODELYARD_UPSTREAM_TIMEOUT``)…
UPSTREAM_TIMEOUT = 1.0
#: … and the slow answers take this long: slower than that deadline.
SLOW_SECONDS = 2.0
#: A request's whole budget (``MODELYARD_ROUTE_DEADLINE_SECONDS``): room for every target.
ROUTE_DEADLINE = 30.0
#: A tripped breaker's open period and its cap (``MODELYARD_COOLDOWN_SECONDS`` / ``_MAX_``):
#: the measured run lasts seconds, so with the defaults (5 s, doubling) a burst of timeouts
#: at its start could keep a flaky upstream out of all of it, and its faults unmet.
COOLDOWN_SECONDS = 0.5
COOLDOWN_MAX_SECONDS = 1.0
#: Seconds the fakes keep an idle connection open (then the gateway's pool drains).
UPSTREAM_KEEP_ALIVE = 1.0
#: Seconds to wait for the server to be idle.
SETTLE_TIMEOUT = 20.0
#: Seconds to wait for the usage writer (``MODELYARD_USAGE_FLUSH_SECONDS`` is 1).
ROWS_TIMEOUT = 30.0


@dataclass
class Upstreams:
    """The fakes behind the route, by provider name."""

    flaky: dict[str, FaultyOpenAI]
    healthy: FaultyOpenAI
    down_port: int

    @property
    def ports(self) -> set[int]:
        fakes = [*self.flaky.values(), self.healthy]
        return {int(fake.url.rsplit(":", 1)[1]) for fake in fakes} | {self.down_port}

    def served(self) -> dict[str, dict[str, int]]:
        """What each fake answered, by fault."""
        fakes = {**self.flaky, "healthy": self.healthy}
        return {
            name: {str(fault): count for fault, count in fake.served.items()}
            for name, fake in fakes.items()
        }


@contextmanager
def faulty_upstreams(*, slow_seconds: float = SLOW_SECONDS) -> Iterator[Upstreams]:
    """Three flaky upstreams (their own seeds), one healthy, one down, all serving."""
    with ExitStack() as stack:
        flaky = {
            f"flaky-{n}": stack.enter_context(
                FaultyOpenAI(
                    plan=FaultPlan(seed=n),
                    slow_seconds=slow_seconds,
                    keys={UPSTREAM_KEY},
                    record_requests=False,
                    keep_alive_seconds=UPSTREAM_KEEP_ALIVE,
                )
            )
            for n in (1, 2, 3)
        }
        healthy = stack.enter_context(
            FaultyOpenAI(
                plan=FaultPlan(rate_limited=0, unavailable=0, slow=0),
                keys={UPSTREAM_KEY},
                record_requests=False,
                keep_alive_seconds=UPSTREAM_KEEP_ALIVE,
            )
        )
        yield Upstreams(flaky, healthy, closed_port())


@dataclass(frozen=True)
class Accounts:
    staff_token: str
    user_id: int
    user_token: str


def make_accounts(settings: Settings, *, prefix: str = "") -> Accounts:
    """A staff account and a user with API tokens, written straight to the database."""

    async def create(database: Database) -> Accounts:
        staff = await make_user(database, f"{prefix}ops@example.com", staff=True)
        user = await make_user(database, f"{prefix}client@example.com")
        return Accounts(
            await make_token(database, staff), user.id, await make_token(database, user)
        )

    return run_with_database(settings, create)


def configure_route(base_url: str, staff_token: str, upstreams: Upstreams) -> None:
    """The providers and the ``faulty-mix`` route, through the admin API."""
    headers = {"authorization": f"Bearer {staff_token}"}
    providers: list[dict[str, Any]] = [
        {"name": "flaky-1", "base_url": upstreams.flaky["flaky-1"].base_url, "is_default": True},
        {"name": "down", "base_url": f"http://127.0.0.1:{upstreams.down_port}/v1"},
        {"name": "flaky-2", "base_url": upstreams.flaky["flaky-2"].base_url},
        {"name": "flaky-3", "base_url": upstreams.flaky["flaky-3"].base_url},
    ]
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for provider in providers:
            body = {"kind": "openai_compatible", "api_key": UPSTREAM_KEY, **provider}
            created = client.post("/v2/admin/providers", json=body)
            assert created.status_code == 201, created.text
        healthy = {
            "name": "healthy",
            "kind": "openai",
            "api_key": UPSTREAM_KEY,
            "base_url": upstreams.healthy.base_url,
        }
        created = client.post("/v2/admin/providers", json=healthy)
        assert created.status_code == 201, created.text
        route = {
            "name": ROUTE,
            "targets": [
                {"provider": "openai_compatible", "model": MODEL},
                {"provider": "openai", "model": MODEL},
            ],
        }
        created = client.post("/v2/admin/routes", json=route)
        assert created.status_code == 201, created.text


def generate_load(
    url: str, *, token: str, model: str, requests: int, concurrency: int, id_prefix: str
) -> dict[str, Any]:
    """Run ``python -m bench.load`` (its own process) and return its figures."""
    command = [sys.executable, "-m", "bench.load", f"{url}/v1/chat/completions"]
    command += ["--token", token, "--model", model, "--requests", str(requests)]
    command += ["--concurrency", str(concurrency), "--request-id-prefix", id_prefix]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


@dataclass(frozen=True)
class Snapshot:
    """The server process at rest."""

    rss_bytes: int
    fds: int
    #: Established connections: ``inbound`` and ``to:PORT``.
    established: dict[str, int]
    #: Seconds it took to be idle.
    settled_after: float


def settle(server: ServerProcess, upstream_ports: set[int]) -> Snapshot:
    """Wait until the server holds no client and no upstream connection, then measure.

    Database connections (a pool) may stay; they are part of the snapshot."""
    started = time.monotonic()
    while True:
        established = established_by_peer(server.pid, server_port=server.port)
        busy = established["inbound"] + sum(established[f"to:{p}"] for p in upstream_ports)
        if busy == 0 or time.monotonic() - started > SETTLE_TIMEOUT:
            break
        time.sleep(0.2)
    return Snapshot(
        rss_bytes(server.pid),
        fd_count(server.pid),
        dict(established),
        round(time.monotonic() - started, 1),
    )


def usage_request_ids(settings: Settings, prefix: str) -> list[str]:
    async def read(database: Database) -> list[str]:
        async with database.sessions() as session:
            ids = await session.scalars(
                select(UsageRecord.request_id).where(UsageRecord.request_id.like(f"{prefix}%"))
            )
            return [str(request_id) for request_id in ids]

    return run_with_database(settings, read)


def usage_row_count(settings: Settings) -> int:
    async def count(database: Database) -> int:
        async with database.sessions() as session:
            return int(await session.scalar(select(func.count(UsageRecord.id))) or 0)

    return run_with_database(settings, count)


def wait_for_rows(settings: Settings, expected: int) -> int:
    """The number of usage rows once it reaches ``expected`` (or after the timeout)."""
    return poll_sync(
        lambda: usage_row_count(settings), lambda rows: rows >= expected, timeout=ROWS_TIMEOUT
    )


_METRIC = re.compile(r"^modelyard_gateway_(failovers|attempts)_total\{(.*)\} ([0-9.e+]+)$")


def gateway_metrics(base_url: str) -> dict[str, dict[str, float]]:
    """Failovers by reason and upstream attempts by outcome, from ``/metrics``."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    found: dict[str, dict[str, float]] = {"failovers": {}, "attempts": {}}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match is None:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        name = labels.get("reason") or labels.get("outcome", "?")
        table = found[match.group(1)]
        table[name] = table.get(name, 0.0) + float(match.group(3))
    return found


@dataclass
class LoadReport:
    """Everything measured in one run; :meth:`problems` lists what fails the bar."""

    backend: str
    requests: int
    concurrency: int
    warmup: int
    load: dict[str, Any]
    warmup_load: dict[str, Any]
    #: Usage rows of the measured run whose request id was sent, and all rows.
    rows: int
    rows_total: int
    duplicate_ids: int
    unknown_ids: int
    before: Snapshot
    after: Snapshot
    #: What each fake answered during the measured run, by fault.
    served: dict[str, dict[str, int]]
    #: The server's failovers by reason and attempts by outcome during the measured run.
    metrics: dict[str, dict[str, float]]
    #: The same since the server started (the warm-up included).
    metrics_total: dict[str, dict[str, float]]
    rows_after_stop: int
    exit_status: int | None
    #: The database server's port (None for SQLite): the pool's connections to it stay
    #: open at rest, as many as sessions overlapped under load, up to the pool's size.
    database_port: int | None = None
    memory_limit_mb: float = 50.0

    @property
    def rss_growth_mb(self) -> float:
        return (self.after.rss_bytes - self.before.rss_bytes) / 2**20

    def pooled(self, snapshot: Snapshot) -> int:
        """The server's connections to the database in ``snapshot``."""
        if self.database_port is None:
            return 0
        return snapshot.established.get(f"to:{self.database_port}", 0)

    def unpooled(self, snapshot: Snapshot) -> dict[str, int]:
        """``snapshot``'s established connections but the database's."""
        pool = f"to:{self.database_port}"
        return {peer: n for peer, n in snapshot.established.items() if n and peer != pool}

    @property
    def faults_injected(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for name, served in self.served.items():
            if name != "healthy":
                total.update({k: v for k, v in served.items() if k != "ok"})
        return total

    def problems(self) -> list[str]:
        """What is wrong with the run (empty when it passed)."""
        found = []
        if self.load["statuses"] != {"200": self.requests} or self.load["transport_errors"]:
            found.append(
                f"not every request succeeded: {self.load['statuses']}, "
                f"{self.load['transport_errors']} without an answer"
            )
        if self.warmup_load["errors"]:
            found.append(f"the warm-up had errors: {self.warmup_load['statuses']}")
        expected_total = self.requests + self.warmup
        if self.rows != self.requests or self.rows_total != expected_total:
            found.append(
                f"usage rows {self.rows} for {self.requests} requests "
                f"({self.rows_total} in all for {expected_total})"
            )
        if self.duplicate_ids or self.unknown_ids:
            found.append(
                f"usage rows: {self.duplicate_ids} duplicated, {self.unknown_ids} unknown ids"
            )
        if self.rows_after_stop != expected_total:
            found.append(f"{self.rows_after_stop} rows after a clean stop")
        if self.rss_growth_mb > self.memory_limit_mb:
            found.append(f"resident memory grew {self.rss_growth_mb:.1f} MB")
        before_pool, after_pool = self.pooled(self.before), self.pooled(self.after)
        if after_pool > POOL_SIZE:
            found.append(f"{after_pool} database connections at rest (the pool keeps {POOL_SIZE})")
        if self.after.fds - after_pool > self.before.fds - before_pool:
            found.append(
                f"file descriptors {self.before.fds} → {self.after.fds} "
                f"(of them to the database: {before_pool} → {after_pool})"
            )
        if self.unpooled(self.after) != self.unpooled(self.before):
            found.append(
                f"established connections {self.before.established} → {self.after.established}"
            )
        if self.exit_status not in (0, -signal.SIGTERM):
            found.append(f"the server exited with {self.exit_status} on SIGTERM")
        return found


def _minus(
    now: dict[str, dict[str, Any]], then: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Counts since ``then`` (what the measured run alone did)."""
    return {
        name: {key: value - then.get(name, {}).get(key, 0) for key, value in counts.items()}
        for name, counts in now.items()
    }


def _check_ids(ids: list[str], prefix: str, count: int) -> tuple[int, int]:
    expected = {f"{prefix}{n:08d}" for n in range(count)}
    seen = Counter(ids)
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    return duplicates, len(set(seen) - expected)


def _database_port(settings: Settings) -> int | None:
    if settings.is_sqlite:
        return None
    return make_url(settings.sqlalchemy_url).port or 5432


def run_load(
    settings: Settings,
    workdir: Path,
    *,
    requests: int,
    concurrency: int = 64,
    warmup: int = 1000,
    backend: str = "sqlite",
) -> LoadReport:
    """The whole scenario on ``settings``'s (migrated, empty) database."""
    accounts = make_accounts(settings)
    env = server_env(
        settings,
        MODELYARD_UPSTREAM_TIMEOUT=str(UPSTREAM_TIMEOUT),
        MODELYARD_ROUTE_DEADLINE_SECONDS=str(ROUTE_DEADLINE),
        MODELYARD_COOLDOWN_SECONDS=str(COOLDOWN_SECONDS),
        MODELYARD_COOLDOWN_MAX_SECONDS=str(COOLDOWN_MAX_SECONDS),
        MODELYARD_USAGE_FLUSH_SECONDS="1",
    )
    with faulty_upstreams() as upstreams, ServerProcess(env, workdir) as server:
        configure_route(server.url, accounts.staff_token, upstreams)

        def load(count: int, prefix: str) -> dict[str, Any]:
            return generate_load(
                server.url,
                token=accounts.user_token,
                model=ROUTE,
                requests=count,
                concurrency=concurrency,
                id_prefix=prefix,
            )

        warmup_load = load(warmup, "warm-")
        wait_for_rows(settings, warmup)
        before = settle(server, upstreams.ports)
        served_before, metrics_before = upstreams.served(), gateway_metrics(server.url)
        measured = load(requests, "load-")
        rows_total = wait_for_rows(settings, warmup + requests)
        after = settle(server, upstreams.ports)
        served = _minus(upstreams.served(), served_before)
        metrics_total = gateway_metrics(server.url)
        metrics = _minus(metrics_total, metrics_before)
        ids = usage_request_ids(settings, "load-")
        exit_status = server.stop()
    duplicates, unknown = _check_ids(ids, "load-", requests)
    return LoadReport(
        backend=backend,
        requests=requests,
        concurrency=concurrency,
        warmup=warmup,
        load=measured,
        warmup_load=warmup_load,
        rows=len(ids) - duplicates - unknown,
        rows_total=rows_total,
        duplicate_ids=duplicates,
        unknown_ids=unknown,
        before=before,
        after=after,
        served=served,
        metrics=metrics,
        metrics_total=metrics_total,
        rows_after_stop=usage_row_count(settings),
        exit_status=exit_status,
        database_port=_database_port(settings),
    )
