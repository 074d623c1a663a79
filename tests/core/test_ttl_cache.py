"""The in-process TTL cache and the API-token cache built on it."""

from __future__ import annotations

import httpx
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
