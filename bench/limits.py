"""What the limits cost one request in process: admit and settle, in memory, 20,000 times.

``python -m bench.limits`` times a requests-per-minute limit and a monthly USD budget on
a migrated SQLite file (the spend counter is read once, then kept in memory) and prints
microseconds per admit + settle; ``--profile`` adds cProfile's top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from cryptography.fernet import Fernet

from modelyard.accounts.users import create_user
from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.db.migrate import upgrade
from modelyard.limits.enforcer import LimitEnforcer
from modelyard.limits.records import LimitsSpec, put_limits

__all__ = ["measure"]

SPECS = {
    "rpm": LimitsSpec(requests_per_minute=10**9),
    "budget": LimitsSpec(budget_usd=Decimal(10**6), budget_period="month"),
}


async def _measure(settings: Settings, spec: LimitsSpec, requests: int, profile: bool) -> float:
    database = create_database(settings)
    try:
        async with database.sessions() as session:
            user = await create_user(session, email="bench@example.com", password="bench-pw-1234")
            await put_limits(session, actor=None, kind="user", subject_id=user.id, spec=spec)
        enforcer = LimitEnforcer(database)
        cost = Decimal("0.000123")

        async def one() -> None:
            admission = await enforcer.admit(
                user=user, api_token_id=None, estimated_tokens=lambda: 20
            )
            await enforcer.settle(admission, tokens=30, cost_usd=cost)

        for _ in range(1000):
            await one()
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        for _ in range(requests):
            await one()
        elapsed = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        return elapsed / requests * 1e6
    finally:
        await database.dispose()


def measure(requests: int = 20_000, profile: bool = False) -> dict[str, float]:
    """Microseconds per admit + settle for each limit of :data:`SPECS`."""
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
            figures[name] = asyncio.run(_measure(settings, spec, requests, profile))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for limit, micros in measure(args.requests, args.profile).items():
        print(f"{limit}: {micros:.1f} µs per admit + settle")
