"""The enforcer itself: no database query and no counting for users without limits, the
cached limits rows, and the fallback to in-process counters when Redis is unreachable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from modelyard.db.engine import Database
from modelyard.db.models import User
from modelyard.errors import PaymentRequiredError, RateLimitError
from modelyard.gateway.redis_client import create_redis
from modelyard.limits.enforcer import LimitEnforcer
from modelyard.limits.records import LimitsSpec, put_limits
from tests.helpers import make_user
from tests.limits.conftest import Clock


@pytest.fixture
def statements(database: Database) -> Iterator[list[str]]:
    """Every SQL statement the database runs while the test does."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", note)
    yield seen
    event.remove(database.engine.sync_engine, "before_cursor_execute", note)


async def limit(database: Database, user: User, **values: Any) -> None:
    async with database.sessions() as session:
        await put_limits(
            session, actor=None, kind="user", subject_id=user.id, spec=LimitsSpec(**values)
        )


async def test_requests_that_miss_the_cache_together_share_one_query(
    database: Database, statements: list[str]
) -> None:
    user = await make_user(database, "crowd@example.com")
    await limit(database, user, requests_per_minute=1000)
    enforcer = LimitEnforcer(database)
    statements.clear()
    found = await asyncio.gather(*(enforcer.limits_of(user.id, 3) for _ in range(16)))
    assert len([s for s in statements if "usage_limits" in s]) == 1
    assert {len(limits) for limits in found} == {1}
    # A change is seen at once: the cached pair is dropped with its subject.
    await limit(database, user, requests_per_minute=5)
    enforcer.invalidate("user", user.id)
    assert (await enforcer.limits_of(user.id, 3))[0].requests_per_minute == 5


async def test_no_limits_costs_no_query_after_the_first(
    database: Database, statements: list[str]
) -> None:
    user = await make_user(database, "free@example.com")
    enforcer = LimitEnforcer(database)
    statements.clear()
    first = await enforcer.admit(user=user, api_token_id=7, estimated_tokens=10)
    assert len(statements) == 1  # the user's and the token's rows, in one query
    started = time.perf_counter()
    for _ in range(2000):
        admission = await enforcer.admit(user=user, api_token_id=7, estimated_tokens=10)
        await enforcer.settle(admission, tokens=12, cost_usd=Decimal("0.01"))
    per_request = (time.perf_counter() - started) / 2000
    assert len(statements) == 1
    assert first.reservations == {} and admission.reservations == {}
    assert per_request < 0.001, f"admit + settle took {per_request * 1e6:.0f} µs"


async def test_limits_are_cached_until_invalidated(database: Database, clock: Clock) -> None:
    user = await make_user(database, "cached@example.com")
    enforcer = LimitEnforcer(database, clock=clock)
    await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    await limit(database, user, requests_per_minute=1)
    # Another process's change is not seen while the cached "no limits" is fresh...
    for _ in range(3):
        await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    # ... this process's own change is, at once.
    enforcer.invalidate("user", user.id)
    await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    with pytest.raises(RateLimitError):
        await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)


async def test_cache_expires_after_cache_seconds(database: Database, clock: Clock) -> None:
    user = await make_user(database, "expiring@example.com")
    enforcer = LimitEnforcer(database, clock=clock, cache_seconds=0.05)
    await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    await limit(database, user, requests_per_minute=1)
    await asyncio.sleep(0.06)
    await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    with pytest.raises(RateLimitError):
        await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)


async def test_redis_down_falls_back_to_local_counters(database: Database, clock: Clock) -> None:
    user = await make_user(database, "offline@example.com")
    await limit(database, user, requests_per_minute=2, budget_usd=Decimal("1"))
    redis = create_redis("redis://127.0.0.1:1/0", connect_timeout=0.2)
    try:
        enforcer = LimitEnforcer(database, redis=redis, prefix="x:", clock=clock)
        first = await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
        assert first.local
        await enforcer.settle(first, tokens=1, cost_usd=Decimal("1"))
        with pytest.raises(PaymentRequiredError, match=r"\$1.00 was spent this month"):
            await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    finally:
        await redis.aclose()


async def test_settle_twice_counts_once(database: Database, clock: Clock) -> None:
    user = await make_user(database, "twice@example.com")
    await limit(database, user, tokens_per_minute=100)
    enforcer = LimitEnforcer(database, clock=clock)
    admission = await enforcer.admit(user=user, api_token_id=None, estimated_tokens=50)
    await enforcer.settle(admission, tokens=10, cost_usd=Decimal(0))
    await enforcer.settle(admission, tokens=10, cost_usd=Decimal(0))
    (limits,) = await enforcer.limits_of(user.id, None)
    usage = await enforcer.usage(limits, user_id=user.id)
    assert (usage.requests_this_minute, usage.tokens_this_minute, usage.in_flight) == (1, 10, 0)


async def test_prompt_tokens_are_counted_only_for_a_token_limit(database: Database) -> None:
    """Counting a long prompt's tokens costs more than the rest of the check: the estimate
    is made only when a limit counts tokens."""
    user = await make_user(database, "counted@example.com")
    enforcer = LimitEnforcer(database)
    counted: list[int] = []

    def estimate() -> int:
        counted.append(1)
        return 40

    free = await enforcer.admit(user=user, api_token_id=None, estimated_tokens=estimate)
    await limit(database, user, requests_per_minute=100)
    enforcer.invalidate("user", user.id)
    requests = await enforcer.admit(user=user, api_token_id=None, estimated_tokens=estimate)
    assert counted == [] and free.estimated_tokens == requests.estimated_tokens == 0
    await limit(database, user, requests_per_minute=100, tokens_per_minute=1000)
    enforcer.invalidate("user", user.id)
    tokens = await enforcer.admit(user=user, api_token_id=None, estimated_tokens=estimate)
    assert counted == [1] and tokens.estimated_tokens == 40
    await enforcer.settle(tokens, tokens=55, cost_usd=Decimal("0"))
    usage = await enforcer.usage((await enforcer.limits_of(user.id, None))[0], user_id=user.id)
    assert usage.tokens_this_minute == 55


async def test_requests_that_find_no_spend_counter_together_share_one_sum(
    database: Database, statements: list[str], clock: Clock
) -> None:
    user = await make_user(database, "herd@example.com")
    await limit(database, user, budget_usd=Decimal("5"), budget_period="month")
    enforcer = LimitEnforcer(database, clock=clock)
    await enforcer.limits_of(user.id, None)
    statements.clear()
    admissions = await asyncio.gather(
        *(enforcer.admit(user=user, api_token_id=None, estimated_tokens=1) for _ in range(16))
    )
    assert len([s for s in statements if "usage_records" in s]) == 1
    assert all(admission.reservations for admission in admissions)


async def test_a_spent_budget_opens_again_when_its_period_ends(
    database: Database, clock: Clock
) -> None:
    user = await make_user(database, "monthly@example.com")
    await limit(database, user, budget_usd=Decimal("1"), budget_period="month")
    enforcer = LimitEnforcer(database, clock=clock)
    admission = await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    await enforcer.settle(admission, tokens=1, cost_usd=Decimal("1"))
    with pytest.raises(PaymentRequiredError, match="resets at 2025-04-01T00:00:00Z"):
        await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    clock.now = datetime(2025, 4, 1, tzinfo=UTC).timestamp()  # the next month, same cache
    clock.now -= 0.001
    with pytest.raises(PaymentRequiredError):
        await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)
    clock.now += 0.001
    assert (await enforcer.admit(user=user, api_token_id=None, estimated_tokens=1)).reservations
