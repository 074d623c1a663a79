"""The gateway as a platform team runs it, beside the default, in one run (issue 20).

Two deployments of one ``modelyard serve`` worker, each on a fresh data directory, against
the same fake OpenAI upstream:

* **default**: SQLite, no Redis, no limits (``make run``);
* **platform**: usage written to PostgreSQL (a database of the bench's own, dropped
  afterwards), limits, cooldowns and the response cache's counters in Redis
  (``MODELYARD_REDIS_URL``, a prefix of the run's own), and the user has a USD budget and
  request and token limits (all far above what the run spends, so every request is
  checked and none refused).

Both serve all along and are measured in turn, five rounds each; each round measures
non-streaming chat at 16 and 64 clients and streams at 16. The figures are medians; the
target is the platform within 15% of the default. Run with ``python -m bench.deployment``
(PostgreSQL from ``MODELYARD_BENCH_POSTGRES_URL``, Redis from
``MODELYARD_BENCH_REDIS_URL``).

``python -m bench.deployment --parts`` measures the parts one by one instead: the
worker's CPU time per request (from ``/proc``) and req/s, chat at 16 clients, for each
combination in :data:`PART_SETS`, alternating, medians of three rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from bench.databases import PostgresUnavailable, postgres_settings
from bench.gateway import MODEL, _config, _env, bench_token
from bench.processes import background, cpu_seconds, free_port, load
from modelyard.db.engine import create_database
from modelyard.db.models import User
from modelyard.limits.records import LimitsSpec, put_limits

__all__ = ["PLATFORM", "deployed", "parts", "report", "run", "section"]

REDIS_URL = os.environ.get("MODELYARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
EMAIL = "bench@example.com"
#: Loads of one round: (label, requests, clients, streamed).
LOADS = (("chat, 16 clients", 3000, 16, False), ("chat, 64 clients", 3000, 64, False),
         ("streams, 16 clients", 1500, 16, True))  # fmt: skip
#: The machine's speed drifts by tens of percent over minutes (a shared VM): five short
#: rounds, alternating between two servers that both stay up, keep drift out of the ratio.
ROUNDS = 5


async def _limit(database_url: str | None, data_dir: Path) -> None:
    from modelyard.config import Settings

    settings = Settings(env="test", data_dir=data_dir, database_url=database_url, _env_file=None)
    database = create_database(settings)
    try:
        async with database.sessions() as session:
            user_id = await session.scalar(select(User.id).where(User.email == EMAIL))
            assert user_id is not None
            spec = LimitsSpec(
                budget_usd=Decimal("1000"),
                requests_per_minute=10_000_000,
                tokens_per_minute=1_000_000_000,
            )
            await put_limits(session, actor=None, kind="user", subject_id=user_id, spec=spec)
    finally:
        await database.dispose()


#: The parts of the platform deployment (:func:`deployed`'s ``parts``).
PLATFORM = frozenset({"postgres", "redis", "budget"})


@contextlib.contextmanager
def deployed(
    parts: frozenset[str], upstream: int, failing: int, src: Path | None = None
) -> Iterator[tuple[str, str, int]]:
    """``(chat URL, token, worker pid)`` of one worker with the deployment's ``parts``
    (some of :data:`PLATFORM`; none: the default), running the code of ``src`` if given."""
    with contextlib.ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        port = free_port()
        config = data / "modelyard.yaml"
        config.write_text(_config(upstream, failing))
        env = _env(data, port, config)
        # The bench model has no catalog price; a budget needs one.
        env["MODELYARD_DEFAULT_PRICES"] = '{"openai_compatible": [0.5, 1.5]}'
        if src is not None:
            env["PYTHONPATH"] = str(src)
        if "postgres" in parts:
            settings = stack.enter_context(postgres_settings())
            assert settings.database_url is not None
            env["MODELYARD_DATABASE_URL"] = settings.database_url
        if "redis" in parts:
            env["MODELYARD_REDIS_URL"] = REDIS_URL
            env["MODELYARD_REDIS_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}:"
        token = bench_token(env, EMAIL)
        if "budget" in parts:
            asyncio.run(_limit(env.get("MODELYARD_DATABASE_URL"), data))
        app_cmd = [sys.executable, "-m", "modelyard", "serve", "--workers", "1"]
        server = stack.enter_context(
            background(app_cmd, env=env, ready_url=f"http://127.0.0.1:{port}/healthz")
        )
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        load(url, token=token, model=MODEL, requests=500, concurrency=16)  # warm-up
        yield url, token, server.pid


def run(quick: bool = False) -> dict[str, Any]:
    """Measure both deployments, both serving all along, loads alternating; the figures of
    each round (``quick``: one round of a tenth of the requests)."""
    upstream, failing = free_port(), free_port()
    rounds: dict[str, list[dict[str, Any]]] = {"default": [], "platform": []}
    upstream_cmd = [sys.executable, "-m", "bench.upstream", str(upstream)]
    failing_cmd = [sys.executable, "-m", "bench.upstream", str(failing), "429"]
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            background(upstream_cmd, ready_url=f"http://127.0.0.1:{upstream}/v1/models")
        )
        stack.enter_context(
            background(failing_cmd, ready_url=f"http://127.0.0.1:{failing}/v1/models")
        )
        servers = {
            name: stack.enter_context(
                deployed(PLATFORM if name == "platform" else frozenset(), upstream, failing)
            )
            for name in rounds
        }
        for _ in range(1 if quick else ROUNDS):
            for name, (url, token, _pid) in servers.items():
                figures = {
                    label: load(
                        url,
                        token=token,
                        model=MODEL,
                        requests=requests // 10 if quick else requests,
                        concurrency=clients,
                        stream=stream,
                    )
                    for label, requests, clients, stream in LOADS
                }
                rounds[name].append(figures)
                print(f"{name}: {_summary(figures)}", file=sys.stderr)
    return rounds


def _summary(figures: dict[str, Any]) -> str:
    return ", ".join(
        f"{label} {result['rps']:.0f}/s ({result['errors']} errors)"
        for label, result in figures.items()
    )


def _median(rounds: list[dict[str, Any]], label: str, key: str) -> float:
    return statistics.median(figures[label][key] for figures in rounds)


def report(rounds: dict[str, list[dict[str, Any]]]) -> str:
    """The Markdown table: each load's median req/s, p50 and p99 in both deployments."""
    lines = [
        "| load | default req/s | platform req/s | ratio | default p50 / p99 | "
        "platform p50 / p99 | platform errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, *_ in LOADS:
        base = _median(rounds["default"], label, "rps")
        ours = _median(rounds["platform"], label, "rps")
        errors = sum(figures[label]["errors"] for figures in rounds["platform"])
        lines.append(
            f"| {label} | {base:,.0f} | {ours:,.0f} | {ours / base:.2f} | "
            f"{_median(rounds['default'], label, 'p50_ms'):.1f} / "
            f"{_median(rounds['default'], label, 'p99_ms'):.1f} ms | "
            f"{_median(rounds['platform'], label, 'p50_ms'):.1f} / "
            f"{_median(rounds['platform'], label, 'p99_ms'):.1f} ms | {errors} |"
        )
    return "\n".join(lines)


def section(quick: bool = False) -> str:
    """The ``make bench`` section: :func:`report` of :func:`run`, or why it was not run."""
    heading = "## As a platform team runs it (PostgreSQL, Redis, a budget; one worker each)\n\n"
    try:
        asyncio.run(_ping_redis())
        return heading + report(run(quick=quick)) + "\n"
    except (PostgresUnavailable, OSError, RedisError) as error:
        return heading + f"Not measured: {error}.\n"


async def _ping_redis() -> None:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except RedisError as error:
        # The URL may hold a password: name the variable, not its value.
        raise RedisError(
            f"Redis not reachable (MODELYARD_BENCH_REDIS_URL; {type(error).__name__})"
        ) from None
    finally:
        await client.aclose()


#: The combinations ``--parts`` measures, in order.
PART_SETS = (
    frozenset(),
    frozenset({"postgres"}),
    frozenset({"budget"}),
    frozenset({"redis"}),
    frozenset({"redis", "budget"}),
    PLATFORM,
)


def parts(rounds: int = 3, requests: int = 4000) -> str:
    """The Markdown table of each part set's median req/s and worker CPU per request."""
    upstream, failing = free_port(), free_port()
    figures: dict[frozenset[str], list[tuple[float, float]]] = {s: [] for s in PART_SETS}
    upstream_cmd = [sys.executable, "-m", "bench.upstream", str(upstream)]
    with background(upstream_cmd, ready_url=f"http://127.0.0.1:{upstream}/v1/models"):
        for _ in range(rounds):
            for part_set in PART_SETS:
                with deployed(part_set, upstream, failing) as (url, token, pid):
                    before = cpu_seconds(pid)
                    result = load(url, token=token, model=MODEL, requests=requests, concurrency=16)
                    used = (cpu_seconds(pid) - before) / requests * 1e6
                figures[part_set].append((result["rps"], used))
                print(f"{_name(part_set)}: {result['rps']:.0f}/s, {used:.0f} us", file=sys.stderr)
    lines = ["| deployment | req/s | worker CPU per request |", "| --- | ---: | ---: |"]
    for part_set, measured in figures.items():
        rps = statistics.median(m[0] for m in measured)
        cpu = statistics.median(m[1] for m in measured)
        lines.append(f"| {_name(part_set)} | {rps:,.0f} | {cpu:,.0f} µs |")
    return "\n".join(lines)


def _name(part_set: frozenset[str]) -> str:
    return " + ".join(sorted(part_set)) or "default"


if __name__ == "__main__":
    print(parts() if "--parts" in sys.argv[1:] else report(run()))
