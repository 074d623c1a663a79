"""The in-process TTL cache and the API-token cache built on it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.ttl_cache import TTLCache
from tests.helpers import bearer, make_token, make_user


def test_entries_expire_and_the_oldest_go_first() -> None:
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(ttl=10, max_size=2, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # over the size bound: "a" (oldest written) goes
    assert cache.get("a") is None and cache.get("b") == 2 and len(cache) == 2
    now[0] = 10.0
    assert cache.get("b") is None and cache.get("c") is None
    cache.put("d", 4)
    cache.discard_where(lambda key, _value: key == "d")
    assert cache.get("d") is None


async def test_revocation_takes_effect_at_once_in_this_process(
    client: httpx.AsyncClient, database: Database, app: FastAPI
) -> None:
    token = await make_token(database, await make_user(database, "cache@example.com"))
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 200
    assert len(app.state.modelyard.token_cache) == 1
    token_id = (await client.get("/v2/tokens", headers=bearer(token))).json()[0]["id"]
    revoked = await client.delete(f"/v2/tokens/{token_id}", headers=bearer(token))
    assert revoked.status_code == 204
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 401


async def test_concurrent_misses_share_one_load() -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=10)
    loads = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await release.wait()
        return 7

    waiting = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(16)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one caller leaves: the others' load goes on
    release.set()
    assert [await task for task in waiting[1:]] == [7] * 15
    assert loads == 1 and cache.get("k") == 7
    assert await cache.get_or_load("k", load) == 7 and loads == 1  # now from the cache


async def test_a_load_overtaken_by_a_discard_stores_nothing() -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=10)
    release = asyncio.Event()

    async def stale() -> int:
        await release.wait()
        return 1

    async def fresh() -> int:
        return 2

    first = asyncio.create_task(cache.get_or_load("k", stale))
    await asyncio.sleep(0)
    cache.discard("k")  # what the load reads changed meanwhile
    assert await cache.get_or_load("k", fresh) == 2  # a new load, not the old one's result
    release.set()
    assert await first == 1
    assert cache.get("k") == 2


async def test_a_failed_load_is_not_stored_and_is_tried_again() -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=10)

    async def broken() -> int:
        raise RuntimeError("database down")

    async def working() -> int:
        return 3

    with pytest.raises(RuntimeError):
        await cache.get_or_load("k", broken)
    assert cache.get("k") is None
    assert await cache.get_or_load("k", working) == 3
