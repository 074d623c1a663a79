"""The local Redis for tests: connections and a key prefix of their own per test."""

from __future__ import annotations

import os
import uuid

from redis.asyncio import Redis

from modelyard.gateway.redis_client import create_redis

__all__ = ["REDIS_URL", "close_client", "new_prefix", "open_client"]

REDIS_URL = os.environ.get("MODELYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def new_prefix() -> str:
    return f"modelyard-test:{uuid.uuid4().hex}:"


async def open_client() -> Redis:
    client = create_redis(REDIS_URL)
    assert await client.ping(), f"Redis at {REDIS_URL} is needed by these tests"
    return client


async def close_client(client: Redis, prefix: str) -> None:
    """Delete the test's keys, then close the connection pool."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
