"""The exact-match response cache: its key, and the memory and Redis stores."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from modelyard.gateway.redis_client import RedisGuard, create_redis
from modelyard.gateway.response_cache import (
    MemoryResponseCache,
    RedisResponseCache,
    ResponseCache,
    cache_key,
)
from tests.gateway.redis_helpers import close_client, open_client

REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ],
    "temperature": 0.2,
    "max_tokens": 50,
    "response_format": {"type": "json_schema", "json_schema": {"name": "a", "strict": True}},
}
RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


@dataclass
class Backend:
    cache: ResponseCache
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Backend]:
    if request.param == "memory":
        now = [0.0]

        async def tick(seconds: float) -> None:
            now[0] += seconds

        yield Backend(MemoryResponseCache(100, clock=lambda: now[0]), tick)
        return
    client = await open_client()
    try:
        yield Backend(RedisResponseCache(client, prefix), asyncio.sleep)
    finally:
        await close_client(client, prefix)


def test_the_key_ignores_key_order() -> None:
    reordered = dict(reversed(list(REQUEST.items())))
    reordered["response_format"] = {
        "json_schema": {"strict": True, "name": "a"},
        "type": "json_schema",
    }
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in REQUEST["messages"]]
    key = cache_key(REQUEST)
    assert cache_key(reordered) == key
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.3},
        {"model": "gpt-4o"},
        {"max_tokens": 51},
        {"seed": 7},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"messages": [{"role": "user", "content": "Hello"}]},
        {"response_format": {"type": "json_object"}},
        {"some_future_parameter": 1},
    ],
)
def test_the_key_changes_with_what_the_answer_depends_on(change: dict[str, Any]) -> None:
    assert cache_key({**REQUEST, **change}) != cache_key(REQUEST)


def test_the_key_ignores_delivery_and_the_end_user() -> None:
    streaming = {
        **REQUEST,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "alice",
        "top_p": None,
    }
    assert cache_key(streaming) == cache_key(REQUEST)


def test_the_key_depends_on_the_namespace() -> None:
    assert cache_key(REQUEST, namespace="tenant-1") != cache_key(REQUEST, namespace="tenant-2")
    assert cache_key(REQUEST) != cache_key(REQUEST, namespace="embeddings")


async def test_miss_then_hit(backend: Backend) -> None:
    key = cache_key(REQUEST)
    assert await backend.cache.get(key) is None
    await backend.cache.put(key, RESPONSE, ttl=5)
    assert await backend.cache.get(key) == RESPONSE
    assert await backend.cache.get(cache_key({**REQUEST, "temperature": 1.0})) is None


async def test_what_a_caller_gets_is_a_copy(backend: Backend) -> None:
    value = {"id": "x", "choices": [{"index": 0}]}
    await backend.cache.put("k", value, ttl=5)
    value["id"] = "changed after put"
    got = await backend.cache.get("k")
    assert got is not None and got["id"] == "x"
    got["choices"].append({"index": 1})
    assert await backend.cache.get("k") == {"id": "x", "choices": [{"index": 0}]}


async def test_entries_expire_each_after_its_own_ttl(backend: Backend) -> None:
    await backend.cache.put("short", RESPONSE, ttl=0.1)
    await backend.cache.put("long", RESPONSE, ttl=5)
    await backend.cache.put("none", RESPONSE, ttl=0)
    assert await backend.cache.get("short") == RESPONSE
    assert await backend.cache.get("none") is None
    await backend.advance(0.15)
    assert await backend.cache.get("short") is None
    assert await backend.cache.get("long") == RESPONSE


async def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = MemoryResponseCache(2)
    await cache.put("a", {"n": 1}, ttl=60)
    await cache.put("b", {"n": 2}, ttl=60)
    assert await cache.get("a") == {"n": 1}  # "a" is now more recent than "b"
    await cache.put("c", {"n": 3}, ttl=60)
    assert await cache.get("b") is None
    assert await cache.get("a") == {"n": 1} and await cache.get("c") == {"n": 3}
    assert len(cache) == 2


async def test_redis_entries_are_shared_and_set_with_a_ttl(
    redis_client: Redis, prefix: str
) -> None:
    other = await open_client()
    try:
        writer = RedisResponseCache(redis_client, prefix)
        reader = RedisResponseCache(other, prefix)
        key = cache_key(REQUEST)
        await writer.put(key, RESPONSE, ttl=5)
        assert await reader.get(key) == RESPONSE
        assert 4_000 < await redis_client.pttl(f"{prefix}response:{key}") <= 5_000
        assert await RedisResponseCache(other, f"{prefix}elsewhere:").get(key) is None
    finally:
        await other.aclose()


async def test_a_corrupt_redis_entry_is_a_miss(redis_client: Redis, prefix: str) -> None:
    await redis_client.set(f"{prefix}response:bad", b"{not json", px=5_000)
    await redis_client.set(f"{prefix}response:list", b"[1, 2]", px=5_000)
    cache = RedisResponseCache(redis_client, prefix)
    assert await cache.get("bad") is None
    assert await cache.get("list") is None


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_redis_is_a_miss(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = create_redis(f"redis://127.0.0.1:{closed_port}/0")
    cache = RedisResponseCache(client, "modelyard-test:unreachable:")
    with caplog.at_level(logging.WARNING, logger="modelyard.gateway.redis"):
        for _ in range(3):
            await cache.put("k", RESPONSE, ttl=5)
            assert await cache.get("k") is None
    await client.aclose()
    assert cache.guard.failures >= 1
    warnings = [r for r in caplog.records if "response cache" in r.getMessage()]
    assert len(warnings) == 1, "warned once, not on every call"


async def test_the_guard_pauses_redis_after_a_failure_and_warns_now_and_then(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    guard = RedisGuard("the test", backoff=1.0, warn_every=60.0, clock=lambda: now[0])
    client = create_redis(f"redis://127.0.0.1:{closed_port}/0")
    calls = 0

    async def ping() -> str:
        nonlocal calls
        calls += 1
        await client.ping()
        return "pong"

    with caplog.at_level(logging.WARNING, logger="modelyard.gateway.redis"):
        assert await guard.run(ping, "fallback") == "fallback"
        assert await guard.run(ping, "fallback") == "fallback"
        assert (calls, guard.failures) == (1, 1), "Redis is not called during the pause"
        now[0] = 1.5
        assert await guard.run(ping, "fallback") == "fallback"
        assert (calls, guard.failures) == (2, 2)
        assert len(caplog.records) == 1
        now[0] = 61.0
        assert await guard.run(ping, "fallback") == "fallback"
        assert len(caplog.records) == 2 and "1 more failures" in caplog.records[-1].getMessage()
    await client.aclose()

    async def works() -> str:
        return "pong"

    now[0] = 100.0
    assert await guard.run(works, "fallback") == "pong"
