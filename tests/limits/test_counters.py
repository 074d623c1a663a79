"""The counters, in memory and in Redis: fixed one-minute windows, the budget's spend and
reservations, all-or-nothing admission over several subjects, sharing through Redis."""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Coroutine, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from modelyard.gateway.redis_client import RedisGuard, create_redis
from modelyard.limits.counters import (
    Counters,
    Granted,
    MemoryCounters,
    NeedsSpend,
    Plan,
    Refused,
    Settlement,
    reservation_member,
)
from modelyard.limits.redis_counters import RedisCounters
from tests.limits.conftest import FROZEN, GROUP, REDIS_URL, admission

NOW = FROZEN
MINUTE = int(NOW // 60)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Counters:
    if request.param == "memory":
        return MemoryCounters()
    redis: Redis = request.getfixturevalue("redis_client")
    return RedisCounters(redis, request.getfixturevalue("prefix"))


admit = admission


def budget_plan(budget: int, subject: str = "u1") -> Plan:
    return Plan(subject, None, None, budget, spend_key="month:1:v1", spend_expires_at=NOW + 3600)


async def test_requests_per_minute_is_a_fixed_window(store: Counters) -> None:
    plan = Plan("u1", 3, None, None)
    for _ in range(3):
        assert isinstance(await admit(store, plan), Granted)
    assert await admit(store, plan, now=NOW + 50) == Refused(0, "requests_per_minute", 3)
    # The next UTC minute starts from zero, whatever happened late in the previous one.
    next_minute = (MINUTE + 1) * 60
    assert isinstance(await admit(store, plan, now=next_minute), Granted)
    usage = await store.usage(GROUP, "u1", now=next_minute, minute=MINUTE + 1, spend_key=None)
    assert usage is not None and usage.requests == 1


async def test_tokens_are_reserved_then_replaced_by_the_real_count(store: Counters) -> None:
    plan = Plan("t7", None, 100, None)
    assert isinstance(await admit(store, plan, tokens=60), Granted)
    assert await admit(store, plan, tokens=60) == Refused(0, "tokens_per_minute", 60)
    # The first request really used 15 tokens: its minute now holds 15, not 60.
    await store.settle(GROUP, [Settlement("t7", minute=MINUTE, token_delta=15 - 60)])
    assert isinstance(await admit(store, plan, tokens=60), Granted)
    usage = await store.usage(GROUP, "t7", now=NOW, minute=MINUTE, spend_key=None)
    assert usage is not None and (usage.tokens, usage.requests, usage.in_flight) == (75, 2, 2)


async def test_budget_needs_its_spend_then_refuses_once_spent(store: Counters) -> None:
    plan = budget_plan(1000)
    assert await admit(store, plan) == NeedsSpend(0)
    assert await store.init_spend(GROUP, "u1", "month:1:v1", spent=900, count=3, ttl=99)
    # Initialising twice keeps the first value (another process got there first).
    again = await store.init_spend(GROUP, "u1", "month:1:v1", spent=0, count=0, ttl=99)
    assert again is False
    granted = await admit(store, plan, rid="r1")
    assert granted == Granted((300,))  # a share of the budget: the mean cost, 900 / 3
    # 900 spent + 300 held by the request in flight >= 1000: refused.
    assert await admit(store, plan) == Refused(0, "budget", 900, 300, 1)
    await store.settle(
        GROUP,
        [
            Settlement(
                "u1",
                reservation=reservation_member("r1", 300),
                spend_key="month:1:v1",
                spend_units=50,
            )
        ],
    )
    assert await admit(store, plan) == Granted((237,))  # 950 + 0 held < 1000; 950 // 4
    await store.settle(GROUP, [Settlement("u1", spend_key="month:1:v1", spend_units=60)])
    assert await admit(store, plan) == Refused(0, "budget", 1010, 237, 1)
    usage = await store.usage(GROUP, "u1", now=NOW, minute=MINUTE, spend_key="month:1:v1")
    assert usage is not None and usage.spent == 1010


async def test_a_reservation_never_settled_expires(store: Counters) -> None:
    plan = budget_plan(1000)
    await store.init_spend(GROUP, "u1", "month:1:v1", spent=600, count=1, ttl=99)
    assert isinstance(await admit(store, plan, hold=30), Granted)  # holds 600
    assert await admit(store, plan) == Refused(0, "budget", 600, 600, 1)
    assert isinstance(await admit(store, plan, now=NOW + 31), Granted)


async def test_spend_is_not_counted_before_the_counter_exists(store: Counters) -> None:
    await store.settle(GROUP, [Settlement("u1", spend_key="month:1:v1", spend_units=500)])
    await store.init_spend(GROUP, "u1", "month:1:v1", spent=10, count=1, ttl=99)
    usage = await store.usage(GROUP, "u1", now=NOW, minute=MINUTE, spend_key="month:1:v1")
    assert usage is not None and usage.spent == 10


async def test_admission_is_all_or_nothing_across_subjects(store: Counters) -> None:
    user, token = Plan("u1", 10, None, None), Plan("t2", 1, None, None)
    assert isinstance(await admit(store, user, token), Granted)
    assert await admit(store, user, token) == Refused(1, "requests_per_minute", 1)
    usage = await store.usage(GROUP, "u1", now=NOW, minute=MINUTE, spend_key=None)
    assert usage is not None and usage.requests == 1  # the refused request counted nowhere


async def test_two_redis_clients_share_one_limit(prefix: str) -> None:
    clients = [create_redis(REDIS_URL) for _ in range(2)]
    try:
        one, two = (RedisCounters(client, prefix) for client in clients)
        plan = Plan("u1", 2, None, None)
        assert isinstance(await admit(one, plan), Granted)
        assert isinstance(await admit(two, plan), Granted)
        assert await admit(one, plan) == Refused(0, "requests_per_minute", 2)
        assert await admit(two, plan) == Refused(0, "requests_per_minute", 2)
    finally:
        for client in clients:
            await client.aclose()


async def test_redis_unreachable_answers_none() -> None:
    client = create_redis("redis://127.0.0.1:1/0", connect_timeout=0.2)
    try:
        store = RedisCounters(client, "x:", guard=RedisGuard("limits", warn_every=3600))
        assert await admit(store, Plan("u1", 1, None, None)) is None
        assert await store.settle(GROUP, [Settlement("u1", minute=MINUTE, token_delta=1)]) is None
        assert store.guard.failures >= 1
    finally:
        await client.aclose()


async def test_only_the_expired_reservations_stop_holding(store: Counters) -> None:
    plan = budget_plan(1000)
    await store.init_spend(GROUP, "u1", "month:1:v1", spent=300, count=1, ttl=99)
    for hold in (30, 90, 90):  # 300 spent + 600 held < 1000: the third goes in too
        assert await admit(store, plan, hold=hold) == Granted((300,))
    assert await admit(store, plan) == Refused(0, "budget", 300, 900, 3)
    later = await store.usage(GROUP, "u1", now=NOW + 31, minute=MINUTE, spend_key="month:1:v1")
    assert later is not None and later.in_flight == 2
    assert await admit(store, plan, now=NOW + 31) == Granted((300,))
    assert await admit(store, plan, now=NOW + 31) == Refused(0, "budget", 300, 900, 3)


async def test_redis_keeps_the_same_books_as_memory_through_a_long_mixed_run(
    redis_client: Redis, prefix: str
) -> None:
    """Redis keeps a running sum of the shares in flight; after hundreds of admissions,
    settlements, refusals and expiries in a random order it must still agree with the
    memory store's count, verdict for verdict."""
    stores: list[Counters] = [
        MemoryCounters(),
        RedisCounters(redis_client, prefix, allowances=False),
    ]
    plan = budget_plan(30_000)
    for store in stores:
        await store.init_spend(GROUP, "u1", "month:1:v1", spent=2_000, count=4, ttl=9_999)
    chance = random.Random(20)
    open_members: list[str] = []
    refused = 0
    now = NOW
    for step in range(400):
        now += chance.choice((0.0, 0.5, 7.0))
        if open_members and chance.random() < 0.4:
            member = open_members.pop(chance.randrange(len(open_members)))
            units = chance.randrange(0, 300)
            item = Settlement("u1", reservation=member, spend_key="month:1:v1", spend_units=units)
            for store in stores:
                await store.settle(GROUP, [item])
            continue
        rid, hold = f"r{step}", chance.choice((5.0, 20.0, 600.0))
        verdicts = [await admit(store, plan, now=now, rid=rid, hold=hold) for store in stores]
        assert verdicts[0] == verdicts[1], f"step {step}: {verdicts}"
        if isinstance(verdicts[0], Granted):
            open_members.append(reservation_member(rid, verdicts[0].reserved[0]))
        refused += isinstance(verdicts[0], Refused) and verdicts[0].held > 0
    usages = [
        await store.usage(GROUP, "u1", now=now, minute=int(now // 60), spend_key="month:1:v1")
        for store in stores
    ]
    assert usages[0] == usages[1]
    assert usages[0] is not None and usages[0].in_flight > 0
    assert refused > 0  # some admissions were refused for what was held in flight


async def test_a_missing_running_sum_is_counted_again_from_the_reservations(
    redis_client: Redis, prefix: str
) -> None:
    store = RedisCounters(redis_client, prefix)
    plan = budget_plan(1000)
    await store.init_spend(GROUP, "u1", "month:1:v1", spent=300, count=1, ttl=99)
    assert await admit(store, plan) == Granted((300,))
    assert await admit(store, plan) == Granted((300,))
    assert await redis_client.delete(store.key(GROUP, "u1", "held")) == 1
    assert await admit(store, plan) == Granted((300,))  # 300 spent + 600 held < 1000
    assert await admit(store, plan) == Refused(0, "budget", 300, 900, 3)


async def test_reservations_of_the_version_before_the_running_sum_count_nothing(
    redis_client: Redis, prefix: str
) -> None:
    """During a rolling upgrade, an older process adds members (``<id>:<units>``) to the set
    but not to the sum: their expiry must not take from the sum."""
    store = RedisCounters(redis_client, prefix)
    plan = budget_plan(1000)
    await store.init_spend(GROUP, "u1", "month:1:v1", spent=300, count=1, ttl=99)
    assert await admit(store, plan, hold=60) == Granted((300,))
    older = {"old:300": (NOW + 5) * 1000}  # as the older script added it
    await redis_client.zadd(store.key(GROUP, "u1", "flights"), older)
    assert await admit(store, plan, hold=60) == Granted((300,))
    assert await admit(store, plan, now=NOW + 10) == Granted((300,))  # "old" expired
    assert await admit(store, plan, now=NOW + 10) == Refused(0, "budget", 300, 900, 3)


def _admissions(
    store: Counters,
    asks: Sequence[tuple[str, tuple[Plan, ...]]],
    now: float,
    tokens: int,
    hold: float,
) -> list[Coroutine[Any, Any, object]]:
    """One admission (not yet awaited) per ``(reservation id, plans)`` of ``asks``."""
    return [
        admission(store, *plans, now=now, tokens=tokens, rid=rid, hold=hold) for rid, plans in asks
    ]


async def test_a_batch_applies_its_operations_as_if_one_by_one(
    redis_client: Redis, prefix: str
) -> None:
    """The script reads each key once and writes it back once per batch: its verdicts and
    books must be those of the memory store applying the same operations in order, with
    refusals, settlements and two subjects inside one batch."""
    memory, shared = MemoryCounters(), RedisCounters(redis_client, prefix, allowances=False)
    user = Plan("u1", 12, 8_000, 15_000, spend_key="month:1:v1", spend_expires_at=NOW + 9_999)
    token = Plan("t7", None, 1_500, 9_000, spend_key="month:1:v1", spend_expires_at=NOW + 9_999)
    for store in (memory, shared):
        for subject in ("u1", "t7"):
            await store.init_spend(GROUP, subject, "month:1:v1", spent=900, count=3, ttl=9_999)
    chance = random.Random(7)
    open_members: list[tuple[str, int, str]] = []  # subject, minute, member
    now, refusals = NOW, collections.Counter[str]()
    for round_ in range(60):
        now += chance.choice((0.5, 20.0, 61.0))
        chance.shuffle(open_members)
        settling, open_members = open_members[: chance.randrange(8)], open_members[8:]
        items = [
            Settlement(
                subject,
                minute=minute,
                token_delta=chance.randrange(-20, 40),
                reservation=member,
                spend_key="month:1:v1",
                spend_units=chance.randrange(0, 300),
            )
            for subject, minute, member in settling
        ]
        items += items[:1]  # settled twice: the second finds no reservation
        asks = [
            (f"r{round_}-{i}", (user, token) if chance.random() < 0.5 else (user,))
            for i in range(chance.randrange(1, 12))
        ]
        hold, tokens = chance.choice((5.0, 600.0)), chance.randrange(1, 400)

        await memory.settle(GROUP, items)
        expected = [await pending for pending in _admissions(memory, asks, now, tokens, hold)]
        batches = shared.outbox.batches
        await shared.settle(GROUP, items)
        verdicts = await asyncio.gather(*_admissions(shared, asks, now, tokens, hold))
        assert shared.outbox.batches == batches + 1  # all of the round in one script call
        assert verdicts == expected, f"round {round_}"
        for (rid, plans), verdict in zip(asks, verdicts, strict=True):
            if isinstance(verdict, Granted):
                for plan, share in zip(plans, verdict.reserved, strict=True):
                    member = reservation_member(rid, share)
                    open_members.append((plan.subject, int(now // 60), member))
            elif isinstance(verdict, Refused):
                refusals[verdict.limit] += 1
    for subject in ("u1", "t7"):
        books = [
            await store.usage(
                GROUP, subject, now=now, minute=int(now // 60), spend_key="month:1:v1"
            )
            for store in (memory, shared)
        ]
        assert books[0] == books[1], subject
        # A budget of 0 refuses at once, naming the spend, the shares held and the flights.
        spent = Plan(subject, None, None, 0, spend_key="month:1:v1", spend_expires_at=NOW + 99)
        held = [await admit(store, spent, now=now) for store in (memory, shared)]
        assert held[0] == held[1], subject
        assert isinstance(held[0], Refused) and held[0].held > 0, subject
        stored = await redis_client.get(shared.key(GROUP, subject, "held"))
        assert stored is not None and int(stored) == held[0].held  # the running sum is kept
    assert set(refusals) == {"requests_per_minute", "tokens_per_minute", "budget"}, refusals
