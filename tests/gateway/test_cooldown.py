"""Cooldowns: the circuit breaker rules, in memory and in a real Redis (shared by processes)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import pytest
from redis.asyncio import Redis

from modelyard.gateway.cooldown import (
    CLEAN_SECONDS,
    CooldownPolicy,
    CooldownStore,
    MemoryCooldowns,
    RedisCooldowns,
    key_fingerprint,
    target_id,
)
from modelyard.gateway.redis_client import create_redis
from tests.gateway.redis_helpers import close_client, open_client

#: Short periods so the Redis tests wait on real time for well under a second each.
POLICY = CooldownPolicy(
    rate_limit_default=0.2,
    unauthorized=0.3,
    failure_threshold=3,
    base_cooldown=0.1,
    max_cooldown=0.4,
    probe_timeout=0.2,
    forget_after=5.0,
)
#: Slack added when waiting for a period to pass (Redis runs on real time).
SLACK = 0.03
TARGET = "openai:gpt-4o-mini:0123456789ab"


def just_under(value: float, expected: float, tolerance: float = 0.05) -> bool:
    """``value`` is at most ``expected`` (up to float rounding) and within ``tolerance``."""
    return expected - tolerance < value <= expected + 1e-9


@pytest.fixture
async def other_client(prefix: str) -> AsyncIterator[Redis]:
    """A second connection pool, standing for another app process."""
    client = await open_client()
    yield client
    await close_client(client, prefix)


@dataclass
class Backend:
    store: CooldownStore
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Backend]:
    if request.param == "memory":
        now = [1_000.0]

        async def tick(seconds: float) -> None:
            now[0] += seconds

        yield Backend(MemoryCooldowns(POLICY, clock=lambda: now[0]), tick)
        return
    client = await open_client()
    try:
        yield Backend(RedisCooldowns(client, prefix, POLICY), asyncio.sleep)
    finally:
        await close_client(client, prefix)


async def _trip(store: CooldownStore, target: str = TARGET) -> None:
    for _ in range(POLICY.failure_threshold):
        await store.record_failure(target, "server", None)


def test_key_fingerprint_is_short_stable_and_not_the_key() -> None:
    key = "sk-test-canary-fingerprint-0001"
    fingerprint = key_fingerprint(key)
    assert fingerprint == key_fingerprint(key)
    assert len(fingerprint) == 12 and int(fingerprint, 16) >= 0
    assert fingerprint not in key and key not in fingerprint
    assert fingerprint != key_fingerprint(key + "2")
    assert key_fingerprint(None) == "keyless"
    name = target_id("openai", "gpt-4o", key)
    assert name == f"openai:gpt-4o:{fingerprint}" and key not in name


async def test_a_new_breaker_is_closed(backend: Backend) -> None:
    assert await backend.store.allow(TARGET)
    state = await backend.store.state(TARGET)
    assert state.state == "closed" and state.failures == 0 and state.until is None


async def test_transient_failures_open_it_at_the_threshold(backend: Backend) -> None:
    store = backend.store
    for category in ("server", "timeout"):
        await store.record_failure(TARGET, category, None)
    assert await store.allow(TARGET)
    assert (await store.state(TARGET)).failures == 2
    await store.record_failure(TARGET, "connection", None)
    assert not await store.allow(TARGET)
    state = await store.state(TARGET)
    assert state.state == "open" and state.failures == 3 and state.reason == "connection"
    assert 0 < state.remaining <= POLICY.base_cooldown + 1e-9
    assert await store.allow("openai:gpt-4o-mini:another-key"), "other targets are unaffected"


async def test_a_success_resets_the_count(backend: Backend) -> None:
    store = backend.store
    for _ in range(POLICY.failure_threshold - 1):
        await store.record_failure(TARGET, "protocol", None)
    await store.record_success(TARGET)
    for _ in range(POLICY.failure_threshold - 1):
        await store.record_failure(TARGET, "protocol", None)
    assert await store.allow(TARGET)
    assert (await store.state(TARGET)).failures == POLICY.failure_threshold - 1


async def _calls(client: Redis, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_a_success_on_a_clean_redis_breaker_sends_nothing(
    redis_client: Redis, prefix: str
) -> None:
    store = RedisCooldowns(redis_client, prefix, POLICY)
    deletes = await _calls(redis_client, "del")
    assert await store.allow(TARGET)
    await store.record_success(TARGET)  # nothing was recorded: nothing to forget
    assert await _calls(redis_client, "del") == deletes
    # With failures recorded, the success after the allow forgets them.
    await store.record_failure(TARGET, "server", None)
    assert await store.allow(TARGET)
    await store.record_success(TARGET)
    assert await _calls(redis_client, "del") == deletes + 1
    assert (await store.state(TARGET)).failures == 0
    # A failure seen here after a clean allow is forgotten by the next success.
    assert await store.allow(TARGET)
    await store.record_failure(TARGET, "server", None)
    await store.record_success(TARGET)
    assert (await store.state(TARGET)).failures == 0


async def test_a_clean_redis_breaker_is_asked_again_within_half_a_second(
    redis_client: Redis, other_client: Redis, prefix: str
) -> None:
    here = RedisCooldowns(redis_client, prefix, POLICY)
    elsewhere = RedisCooldowns(other_client, prefix, POLICY)
    scripts = await _calls(redis_client, "evalsha")
    assert await here.allow(TARGET)
    assert await here.allow(TARGET)  # remembered clean: Redis is not asked
    assert await _calls(redis_client, "evalsha") == scripts + 1
    await elsewhere.record_failure(TARGET, "rate_limited", 5.0)
    assert await here.allow(TARGET), "not asked again within half a second"
    await asyncio.sleep(CLEAN_SECONDS + SLACK)
    assert not await here.allow(TARGET), "another process's open breaker, seen in time"
    # This process's own failure drops what it remembered at once.
    other = "openai:gpt-4o:ba9876543210"
    assert await here.allow(other)
    await here.record_failure(other, "rate_limited", 5.0)
    assert not await here.allow(other)


async def test_client_errors_have_no_effect(backend: Backend) -> None:
    for _ in range(POLICY.failure_threshold + 2):
        await backend.store.record_failure(TARGET, "client", None)
    assert await backend.store.allow(TARGET)
    assert (await backend.store.state(TARGET)).failures == 0


async def test_not_found_has_no_effect_unless_the_policy_holds_it() -> None:
    now = [0.0]
    plain = MemoryCooldowns(POLICY, clock=lambda: now[0])
    await plain.record_failure(TARGET, "not_found", None)
    assert await plain.allow(TARGET)
    held = MemoryCooldowns(replace(POLICY, not_found=60.0), clock=lambda: now[0])
    await held.record_failure(TARGET, "not_found", None)
    assert not await held.allow(TARGET)
    assert (await held.state(TARGET)).remaining == 60.0


async def test_retry_after_is_honoured(backend: Backend) -> None:
    store = backend.store
    await store.record_failure(TARGET, "rate_limited", 0.25)
    state = await store.state(TARGET)
    assert state.state == "open" and state.reason == "rate_limited"
    assert just_under(state.remaining, 0.25)
    await backend.advance(0.15)
    assert not await store.allow(TARGET)
    await backend.advance(0.1 + SLACK)
    assert await store.allow(TARGET)


async def test_rate_limited_without_retry_after_uses_the_default(backend: Backend) -> None:
    await backend.store.record_failure(TARGET, "rate_limited", None)
    remaining = (await backend.store.state(TARGET)).remaining
    assert just_under(remaining, POLICY.rate_limit_default)


async def test_unauthorized_holds_long_and_a_short_retry_after_does_not_cut_it(
    backend: Backend,
) -> None:
    store = backend.store
    await store.record_failure(TARGET, "unauthorized", None)
    await store.record_failure(TARGET, "rate_limited", 0.05)  # a straggler's 429
    state = await store.state(TARGET)
    assert state.reason == "unauthorized" and state.remaining > 0.2
    await backend.advance(0.05 + SLACK)
    assert not await store.allow(TARGET)
    await backend.advance(POLICY.unauthorized - 0.05)
    assert await store.allow(TARGET)


async def test_half_open_lets_exactly_one_probe_through(backend: Backend) -> None:
    store = backend.store
    await _trip(store)
    assert not await store.allow(TARGET)
    await backend.advance(POLICY.base_cooldown + SLACK)
    assert (await store.state(TARGET)).state == "half_open"
    answers = await asyncio.gather(*(store.allow(TARGET) for _ in range(10)))
    assert answers.count(True) == 1
    assert not await store.allow(TARGET)
    await store.record_success(TARGET)
    assert all(await asyncio.gather(*(store.allow(TARGET) for _ in range(3))))
    assert (await store.state(TARGET)).state == "closed"


async def test_a_probe_answered_with_a_client_error_hands_over(backend: Backend) -> None:
    store = backend.store
    await _trip(store)
    await backend.advance(POLICY.base_cooldown + SLACK)
    assert await store.allow(TARGET)
    assert not await store.allow(TARGET)
    await store.record_failure(TARGET, "client", None)
    assert (await store.state(TARGET)).state == "half_open"
    assert await store.allow(TARGET)
    assert not await store.allow(TARGET)


async def test_release_hands_the_probe_over_and_counts_nothing(backend: Backend) -> None:
    store = backend.store
    for _ in range(POLICY.failure_threshold + 2):
        await store.release(TARGET)  # a closed breaker: nothing to count, nothing to hold
    assert await store.allow(TARGET) and (await store.state(TARGET)).failures == 0
    await _trip(store)
    await backend.advance(POLICY.base_cooldown + SLACK)
    assert await store.allow(TARGET)
    assert not await store.allow(TARGET)
    await store.release(TARGET)
    state = await store.state(TARGET)
    assert state.state == "half_open" and state.failures == POLICY.failure_threshold
    assert await store.allow(TARGET)
    assert not await store.allow(TARGET)


def test_a_scoped_target_id_is_another_breaker() -> None:
    key = "sk-test-canary-fingerprint-0002"
    shared = target_id("openai", "gpt-4o", key)
    mine = target_id("openai", "gpt-4o", key, "user-7")
    assert mine == f"{shared}:user-7" and key not in mine
    assert mine != target_id("openai", "gpt-4o", key, "user-8")


async def test_a_silent_probe_is_replaced_after_the_probe_timeout(backend: Backend) -> None:
    store = backend.store
    await _trip(store)
    await backend.advance(POLICY.base_cooldown + SLACK)
    assert await store.allow(TARGET)
    await backend.advance(POLICY.probe_timeout / 2)
    assert not await store.allow(TARGET)
    await backend.advance(POLICY.probe_timeout / 2 + SLACK)
    assert await store.allow(TARGET)
    assert not await store.allow(TARGET)


async def test_failed_probes_double_the_cooldown_up_to_the_cap(backend: Backend) -> None:
    store = backend.store
    await _trip(store)
    seen = []
    for _ in range(4):
        seen.append((await store.state(TARGET)).remaining)
        await backend.advance(seen[-1] + SLACK)
        assert await store.allow(TARGET), "the probe"
        await store.record_failure(TARGET, "server", None)  # the probe fails: re-open at once
        assert not await store.allow(TARGET)
    expected = [0.1, 0.2, 0.4, 0.4]
    assert all(just_under(s, e) for s, e in zip(seen, expected, strict=True)), seen


async def test_failures_while_open_do_not_extend_it(backend: Backend) -> None:
    store = backend.store
    await _trip(store)
    for _ in range(5):  # requests that were in flight when it opened
        await store.record_failure(TARGET, "timeout", None)
    assert just_under((await store.state(TARGET)).remaining, POLICY.base_cooldown)
    await backend.advance(POLICY.base_cooldown + SLACK)
    assert await store.allow(TARGET)


async def test_memory_store_needs_no_sleeping() -> None:
    now = [0.0]
    store = MemoryCooldowns(CooldownPolicy(unauthorized=300.0), clock=lambda: now[0])
    await store.record_failure(TARGET, "unauthorized", None)
    now[0] = 299.9
    assert not await store.allow(TARGET)
    assert (await store.state(TARGET)).until == 300.0
    now[0] = 300.0
    assert await store.allow(TARGET)


async def test_redis_state_is_shared_between_processes(
    redis_client: Redis, other_client: Redis, prefix: str
) -> None:
    first = RedisCooldowns(redis_client, prefix, POLICY)
    second = RedisCooldowns(other_client, prefix, POLICY)
    await first.record_failure(TARGET, "unauthorized", None)
    assert not await second.allow(TARGET)
    assert (await second.state(TARGET)).reason == "unauthorized"
    await second.record_success(TARGET)
    assert await first.allow(TARGET)
    elsewhere = RedisCooldowns(redis_client, f"{prefix}other:", POLICY)
    await elsewhere.record_failure(TARGET, "unauthorized", None)
    assert await first.allow(TARGET), "another prefix is another namespace"


async def test_only_one_process_wins_the_redis_probe(
    redis_client: Redis, other_client: Redis, prefix: str
) -> None:
    first = RedisCooldowns(redis_client, prefix, POLICY)
    second = RedisCooldowns(other_client, prefix, POLICY)
    await _trip(first)
    for _ in range(POLICY.failure_threshold):
        assert not await second.allow(TARGET)
    await asyncio.sleep(POLICY.base_cooldown + SLACK)
    answers = await asyncio.gather(*(store.allow(TARGET) for store in [first, second] * 5))
    assert answers.count(True) == 1
    await first.record_failure(TARGET, "server", None)  # the probe fails, seen by both
    assert (await second.state(TARGET)).remaining > POLICY.base_cooldown


async def test_redis_keys_hold_the_fingerprint_and_expire(redis_client: Redis, prefix: str) -> None:
    key = "sk-test-canary-redis-keys-0002"
    name = target_id("openai", "gpt-4o", key)
    store = RedisCooldowns(redis_client, prefix, POLICY)
    await store.record_failure(name, "server", None)
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{prefix}*")]
    assert keys and all(key_fingerprint(key) in k and key not in k for k in keys)
    ttls = [await redis_client.pttl(k) for k in keys]
    assert all(0 < ttl <= 5_000 for ttl in ttls), ttls


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_redis_fails_open(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = create_redis(f"redis://127.0.0.1:{closed_port}/0")
    store = RedisCooldowns(client, "modelyard-test:unreachable:", POLICY)
    with caplog.at_level(logging.WARNING, logger="modelyard.gateway.redis"):
        for _ in range(POLICY.failure_threshold + 1):
            await store.record_failure(TARGET, "unauthorized", None)
        assert await store.allow(TARGET)
        assert (await store.state(TARGET)).state == "closed"
        await store.record_success(TARGET)
    await client.aclose()
    assert store.guard.failures >= 1
    warnings = [r for r in caplog.records if "cooldowns" in r.getMessage()]
    assert len(warnings) == 1, "warned once, not on every call"
