"""Allowances of the Redis counters: far from a limit a process admits from the share of the
room Redis last granted it without waiting for Redis, and Redis still counts every such
admission; near a limit, after a change of minute or plan, or once a settlement's cost has
used the share up, every admission waits for Redis's verdict."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from redis.asyncio import Redis

from modelyard.gateway.redis_client import create_redis
from modelyard.limits.counters import Granted, Plan, Refused, Settlement, reservation_member
from modelyard.limits.redis_counters import ALLOWANCE_REQUESTS, ALLOWANCE_SECONDS, RedisCounters
from tests.limits.conftest import FROZEN, GROUP, REDIS_URL, admission

NOW = FROZEN  # five seconds into a minute
MINUTE = int(NOW // 60)
SPEND_KEY = "month:1:v1"


class Started:
    """A coroutine run up to its first wait: ``done`` says whether it needed none (then
    ``verdict`` is its result); awaiting this finishes it either way."""

    def __init__(self, coroutine: Coroutine[Any, Any, object]) -> None:
        self._coroutine = coroutine
        self.verdict: object = None
        self.done = False
        self._waiting: Any = None
        try:
            self._waiting = coroutine.send(None)
        except StopIteration as finished:
            self.done, self.verdict = True, finished.value

    def __await__(self) -> Generator[Any, Any, object]:
        if self.done:
            return self.verdict
        waiting = self._waiting
        while True:  # what ``await`` does for the rest of the coroutine
            try:
                try:
                    sent = yield waiting
                except BaseException as error:
                    waiting = self._coroutine.throw(error)
                else:
                    waiting = self._coroutine.send(sent)
            except StopIteration as finished:
                return finished.value


def at_once(coroutine: Coroutine[Any, Any, object]) -> object:
    """The verdict of an admission that must come without a wait."""
    started = Started(coroutine)
    assert started.done, "it waited"
    return started.verdict


async def after_a_wait(coroutine: Coroutine[Any, Any, object]) -> object:
    """The verdict of an admission that must wait (for Redis's answer)."""
    started = Started(coroutine)
    assert not started.done, "it did not wait"
    return await started


async def test_far_from_the_limits_admissions_do_not_wait_and_redis_counts_them_all(
    redis_client: Redis, prefix: str
) -> None:
    store = RedisCounters(redis_client, prefix)
    plan = Plan("u1", 10_000, 1_000_000, None)
    assert isinstance(await after_a_wait(admission(store, plan, tokens=100)), Granted)
    for _ in range(ALLOWANCE_REQUESTS):
        assert at_once(admission(store, plan, tokens=100)) == Granted((0,))
    # The allowance is spent: the next one waits for Redis, whose answer renews it.
    assert isinstance(await after_a_wait(admission(store, plan, tokens=100)), Granted)
    assert at_once(admission(store, plan, tokens=100)) == Granted((0,))
    await store.flush()
    usage = await store.usage(GROUP, "u1", now=NOW, minute=MINUTE, spend_key=None)
    admitted = ALLOWANCE_REQUESTS + 3
    assert usage is not None
    assert (usage.requests, usage.tokens, usage.in_flight) == (admitted, admitted * 100, admitted)


async def test_near_a_limit_every_admission_waits_for_redis(
    redis_client: Redis, prefix: str
) -> None:
    store = RedisCounters(redis_client, prefix)
    plan = Plan("u1", 9, None, None)  # after one, an eighth of the 8 left is one request
    assert isinstance(await after_a_wait(admission(store, plan)), Granted)
    assert at_once(admission(store, plan)) == Granted((0,))
    # 7 left: an eighth of it is no whole request, so each of these is Redis's verdict.
    for _ in range(7):
        assert isinstance(await after_a_wait(admission(store, plan)), Granted)
    refused = await after_a_wait(admission(store, plan))
    assert refused == Refused(0, "requests_per_minute", 9)
    tokens = Plan("t1", None, 8_000, None)  # u1 counted 90 tokens
    assert isinstance(await after_a_wait(admission(store, tokens, tokens=1_000)), Granted)
    assert at_once(admission(store, tokens, tokens=875)) == Granted((0,))  # 7,000 / 8
    assert isinstance(await after_a_wait(admission(store, tokens, tokens=1)), Granted)


async def test_a_new_minute_a_changed_plan_or_an_old_allowance_asks_redis(
    redis_client: Redis, prefix: str
) -> None:
    store = RedisCounters(redis_client, prefix)
    plan = Plan("u1", 1_000, None, None)
    assert isinstance(await after_a_wait(admission(store, plan)), Granted)
    assert at_once(admission(store, plan, now=NOW + ALLOWANCE_SECONDS / 2)) == Granted((0,))
    later = NOW + ALLOWANCE_SECONDS
    assert isinstance(await after_a_wait(admission(store, plan, now=later)), Granted)
    changed = Plan("u1", 900, None, None)
    assert isinstance(await after_a_wait(admission(store, changed, now=later)), Granted)
    assert at_once(admission(store, changed, now=later)) == Granted((0,))
    # Just before the next minute, then at its start: the allowance was the old
    # minute's room.
    next_minute = (MINUTE + 1) * 60
    before = next_minute - ALLOWANCE_SECONDS / 2
    assert isinstance(await after_a_wait(admission(store, changed, now=before)), Granted)
    assert at_once(admission(store, changed, now=before)) == Granted((0,))
    assert isinstance(await after_a_wait(admission(store, changed, now=next_minute)), Granted)
    assert at_once(admission(store, changed, now=next_minute)) == Granted((0,))


async def test_a_settled_cost_comes_out_of_the_allowance(redis_client: Redis, prefix: str) -> None:
    store = RedisCounters(redis_client, prefix)
    plan = Plan("u1", None, None, 100_000, spend_key=SPEND_KEY, spend_expires_at=NOW + 3600)
    await store.init_spend(GROUP, "u1", SPEND_KEY, spent=1_000, count=10, ttl=3600)
    # Room after it: 100,000 - 1,000 spent - 100 held; an eighth of it is 12,362.
    assert await after_a_wait(admission(store, plan, rid="r1")) == Granted((100,))
    assert at_once(admission(store, plan, rid="r2")) == Granted((100,))
    cost = Settlement(
        "u1", reservation=reservation_member("r1", 100), spend_key=SPEND_KEY, spend_units=12_200
    )
    await store.settle(GROUP, [cost])
    # 12,362 - 100 - 12,200 is less than one share: Redis must judge the next one.
    assert isinstance(await after_a_wait(admission(store, plan, rid="r3")), Granted)
    await store.flush()
    usage = await store.usage(GROUP, "u1", now=NOW, minute=MINUTE, spend_key=SPEND_KEY)
    assert usage is not None and (usage.spent, usage.in_flight) == (13_200, 2)  # r2, r3 fly


async def test_processes_admitting_in_turn_admit_exactly_the_limit(prefix: str) -> None:
    """Two processes admitting in turn, each from its own allowances: together
    they admit exactly the limit, and Redis's count agrees."""
    clients = [create_redis(REDIS_URL) for _ in range(2)]
    try:
        stores = [RedisCounters(client, prefix) for client in clients]
        plan = Plan("u1", 300, None, None)

        async def keep_asking(store: RedisCounters) -> tuple[int, int]:
            granted = without_waiting = 0
            for _ in range(250):
                started = Started(admission(store, plan))
                without_waiting += started.done
                granted += isinstance(await started, Granted)
                await asyncio.sleep(0)  # the other process's turn
            return granted, without_waiting

        results = await asyncio.gather(*(keep_asking(store) for store in stores))
        for store in stores:
            await store.flush()
        usage = await stores[0].usage(GROUP, "u1", now=NOW, minute=MINUTE, spend_key=None)
        assert sum(granted for granted, _ in results) == 300
        assert usage is not None and usage.requests == 300
        assert all(without_waiting > 0 for _, without_waiting in results), results
    finally:
        for client in clients:
            await client.aclose()


async def test_a_limit_is_passed_by_at_most_what_other_processes_were_allowed(
    prefix: str,
) -> None:
    """The documented price: while process two holds an allowance, process one admits up to
    the limit; two may still admit what its allowance leaves, no more, and only until the
    allowance is :data:`ALLOWANCE_SECONDS` old."""
    clients = [create_redis(REDIS_URL) for _ in range(2)]
    try:
        one, two = (RedisCounters(client, prefix) for client in clients)
        plan = Plan("u1", 1_000, None, None)
        assert isinstance(await after_a_wait(admission(two, plan)), Granted)  # 999 left
        verdicts = [await Started(admission(one, plan)) for _ in range(1_100)]
        assert sum(isinstance(verdict, Granted) for verdict in verdicts) == 999
        for _ in range(ALLOWANCE_REQUESTS):  # an eighth of 999 is more than 64 requests
            assert at_once(admission(two, plan)) == Granted((0,))
        refused = await after_a_wait(admission(two, plan))
        assert refused == Refused(0, "requests_per_minute", 1_000 + ALLOWANCE_REQUESTS)
        fresh = await after_a_wait(admission(one, plan))
        assert isinstance(fresh, Refused)
        one_more = Plan("u1", 1_000 + ALLOWANCE_REQUESTS + 200, None, None)
        assert isinstance(await after_a_wait(admission(two, one_more)), Granted)  # 199 left
        late = NOW + ALLOWANCE_SECONDS
        assert isinstance(await after_a_wait(admission(two, one_more, now=late)), Granted)
    finally:
        for client in clients:
            await client.aclose()
