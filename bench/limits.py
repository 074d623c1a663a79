"""What the limits cost one request in process: admit and settle, in memory, 20,000 times.

``python -m bench.limits`` times a requests-per-minute limit and a monthly USD budget on
a migrated SQLite file (the spend counter is read once, then kept in memory) and prints
microseconds per admit + settle (and for all three limits at once, as ``bench.deployment``
sets them); ``--profile`` adds cProfile's top functions by own time.

``--redis URL`` keeps the counters in that Redis instead (a prefix of the run's own,
deleted afterwards), with 16 requests in flight as a busy worker has them, and prints the
CPU time per admit + settle of this process and of the Redis server (from its ``INFO``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from cryptography.fernet import Fernet
from redis.asyncio import Redis

from modelyard.accounts.users import create_user
from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.db.migrate import upgrade
from modelyard.gateway.redis_client import create_redis
from modelyard.limits.enforcer import LimitEnforcer
from modelyard.limits.records import LimitsSpec, put_limits

__all__ = ["measure"]

#: Requests in flight together with ``--redis``.
CONCURRENCY = 16

SPECS = {
    "rpm": LimitsSpec(requests_per_minute=10**9),
    "budget": LimitsSpec(budget_usd=Decimal(10**6), budget_period="month"),
    "all three": LimitsSpec(
        budget_usd=Decimal(10**6), requests_per_minute=10**9, tokens_per_minute=2 * 10**9
    ),
}


async def _measure(
    settings: Settings, spec: LimitsSpec, requests: int, profile: bool, redis_url: str | None
) -> dict[str, float]:
    database = create_database(settings)
    redis = create_redis(redis_url) if redis_url else None
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    try:
        async with database.sessions() as session:
            user = await create_user(session, email="bench@example.com", password="bench-pw-1234")
            await put_limits(session, actor=None, kind="user", subject_id=user.id, spec=spec)
        enforcer = LimitEnforcer(database, redis=redis, prefix=prefix)
        cost = Decimal("0.000123")
        clients = CONCURRENCY if redis is not None else 1

        async def some(count: int) -> None:
            for _ in range(count):
                admission = await enforcer.admit(
                    user=user, api_token_id=None, estimated_tokens=lambda: 20
                )
                await enforcer.settle(admission, tokens=30, cost_usd=cost)

        async def run(count: int) -> None:
            await asyncio.gather(*(some(count // clients) for _ in range(clients)))

        await run(1000)
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        redis_before = await _redis_cpu(redis)
        cpu_before = time.process_time()
        await run(requests)
        used = time.process_time() - cpu_before
        redis_used = await _redis_cpu(redis) - redis_before
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        await enforcer.aclose()
        return {"process_us": used / requests * 1e6, "redis_us": redis_used / requests * 1e6}
    finally:
        if redis is not None:
            keys = [key async for key in redis.scan_iter(f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
        await database.dispose()


async def _redis_cpu(redis: Redis | None) -> float:
    """The Redis server's CPU seconds so far (0 without Redis)."""
    if redis is None:
        return 0.0
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(
    requests: int = 20_000, profile: bool = False, redis_url: str | None = None
) -> dict[str, dict[str, float]]:
    """CPU microseconds per admit + settle for each limit of :data:`SPECS`: this process's
    and (with ``redis_url``) the Redis server's."""
    figures = {}
    for name, spec in SPECS.items():
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                env="test",
                data_dir=Path(tmp),
                encryption_keys=Fernet.generate_key().decode(),
                _env_file=None,
            )
            upgrade(settings)
            figures[name] = asyncio.run(_measure(settings, spec, requests, profile, redis_url))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--redis", metavar="URL", help="Counters in this Redis.")
    args = parser.parse_args()
    for limit, micros in measure(args.requests, args.profile, args.redis).items():
        redis = f", Redis {micros['redis_us']:.1f} µs" if args.redis else ""
        print(f"{limit}: {micros['process_us']:.1f} µs per admit + settle{redis}")
