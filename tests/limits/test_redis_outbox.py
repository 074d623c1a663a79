"""The Redis limits' outbox: concurrent admissions share round trips, settlements travel
with the next admission (or after a short delay, or on flush), in the order they were
queued, and nothing is lost or left waiting when a request is cancelled or Redis restarts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from modelyard.db.engine import Database
from modelyard.gateway.redis_client import create_redis
from modelyard.limits.counters import Granted, Plan, Refused, Settlement
from modelyard.limits.enforcer import LimitEnforcer
from modelyard.limits.redis_counters import RedisCounters
from tests.limits.conftest import FROZEN, REDIS_URL, drop_prefix

NOW = FROZEN
MINUTE = int(NOW // 60)


@pytest.fixture
def store(redis_client: Redis, prefix: str) -> RedisCounters:
    return RedisCounters(redis_client, prefix)


async def admit(store: RedisCounters, user: str, plan: Plan, tokens: int = 10) -> object:
    return await store.admit(
        user,
        (plan,),
        now=NOW,
        minute=MINUTE,
        estimated_tokens=tokens,
        reservation_id=uuid.uuid4().hex,
        hold_seconds=60,
    )


async def tokens_in_redis(store: RedisCounters, user: str) -> int:
    value = await store.redis.get(store.key(user, user, "tpm", MINUTE))
    return int(value or 0)


async def test_concurrent_admissions_share_round_trips(store: RedisCounters) -> None:
    users = [f"u{index}" for index in range(5)]
    answers = await asyncio.gather(
        *(admit(store, user, Plan(user, 8, None, None)) for user in users for _ in range(10))
    )
    # Each user got exactly its 8 requests, however the batches were cut.
    for index in range(len(users)):
        mine = answers[index * 10 : index * 10 + 10]
        assert sum(isinstance(answer, Granted) for answer in mine) == 8
        assert sum(isinstance(answer, Refused) for answer in mine) == 2
    assert store.outbox.operations == 50
    assert store.outbox.batches < 10  # fifty admissions, a handful of round trips


async def test_a_settlement_waits_for_the_next_admission(store: RedisCounters) -> None:
    store.outbox.delay = 60  # only an admission or a flush sends it
    plan = Plan("u1", None, 100, None)
    assert isinstance(await admit(store, "u1", plan, tokens=60), Granted)
    await store.settle("u1", [Settlement("u1", minute=MINUTE, token_delta=-45)])
    assert await tokens_in_redis(store, "u1") == 60  # queued, not sent
    # Sent with the next admission and applied before it: 15 + 60 <= 100.
    assert isinstance(await admit(store, "u1", plan, tokens=60), Granted)
    assert await tokens_in_redis(store, "u1") == 75


async def test_another_users_admission_carries_the_settlement_too(
    store: RedisCounters,
) -> None:
    store.outbox.delay = 60
    assert isinstance(await admit(store, "u1", Plan("u1", None, 100, None), 60), Granted)
    await store.settle("u1", [Settlement("u1", minute=MINUTE, token_delta=-50)])
    assert isinstance(await admit(store, "u2", Plan("u2", None, 100, None)), Granted)
    assert await tokens_in_redis(store, "u1") == 10


async def test_flush_and_the_delay_send_a_lone_settlement(store: RedisCounters) -> None:
    store.outbox.delay = 60
    await admit(store, "u1", Plan("u1", None, 100, None), tokens=30)
    await store.settle("u1", [Settlement("u1", minute=MINUTE, token_delta=-10)])
    await store.flush()
    assert await tokens_in_redis(store, "u1") == 20

    store.outbox.delay = 0.01
    await store.settle("u1", [Settlement("u1", minute=MINUTE, token_delta=-5)])
    for _ in range(200):
        if await tokens_in_redis(store, "u1") == 15:
            break
        await asyncio.sleep(0.01)
    assert await tokens_in_redis(store, "u1") == 15


async def test_usage_sees_what_was_settled(store: RedisCounters) -> None:
    store.outbox.delay = 60
    await admit(store, "u1", Plan("u1", None, 100, None), tokens=30)
    await store.settle("u1", [Settlement("u1", minute=MINUTE, token_delta=-25)])
    usage = await store.usage("u1", "u1", now=NOW, minute=MINUTE, spend_key=None)
    assert usage is not None and usage.tokens == 5


async def test_a_cancelled_admission_leaves_the_rest_working(store: RedisCounters) -> None:
    plan = Plan("u1", 100, None, None)
    first = asyncio.ensure_future(admit(store, "u1", plan))
    others = [asyncio.ensure_future(admit(store, "u1", plan)) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    assert all(isinstance(answer, Granted) for answer in await asyncio.gather(*others))
    assert isinstance(await admit(store, "u1", plan), Granted)


async def test_a_restarted_redis_gets_the_script_again(store: RedisCounters) -> None:
    assert isinstance(await admit(store, "u1", Plan("u1", 9, None, None)), Granted)
    await store.redis.script_flush()  # what a Redis restart does to loaded scripts
    answers = await asyncio.gather(
        *(admit(store, user, Plan(user, 9, None, None)) for user in ("u1", "u2", "u3"))
    )
    assert all(isinstance(answer, Granted) for answer in answers)
    usage = await store.usage("u1", "u1", now=NOW, minute=MINUTE, spend_key=None)
    assert usage is not None and usage.requests == 2


async def test_shutdown_sends_what_is_queued(redis_client: Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    client = create_redis(REDIS_URL)
    engine = create_async_engine("sqlite+aiosqlite://")  # the enforcer reads no rows here
    database = Database(engine, async_sessionmaker(engine))
    enforcer = LimitEnforcer(database, redis=client, prefix=prefix)
    try:
        store = enforcer.shared
        assert store is not None
        store.outbox.delay = 60
        await admit(store, "u1", Plan("u1", None, 100, None), tokens=40)
        await store.settle("u1", [Settlement("u1", minute=MINUTE, token_delta=-40)])
        await enforcer.aclose()  # what the app's shutdown does before Redis closes
        await client.aclose()
        assert await redis_client.get(store.key("u1", "u1", "tpm", MINUTE)) == b"0"
    finally:
        await engine.dispose()
        await drop_prefix(redis_client, prefix)
