"""The exact-match response cache: the same request gets the stored response.

:func:`cache_key` names a request by the SHA-256 of its canonical JSON (orjson, keys sorted
at every level). **In** the key: the namespace (which endpoint, e.g. chat completions), the
model or route name, the messages, and every other field of the request — temperature,
top_p, max_tokens, seed, tools, tool_choice, response_format, stop, n, … including fields
this module does not know (a different value can never share an entry). **Out**: ``stream``
and ``stream_options`` (how the answer is delivered, not what it is), ``user`` (an
end-user id for the provider's abuse tracking), and top-level fields whose value is
``null`` (the same as absent). A caller that must not share entries between tenants puts
the tenant in the namespace.

:class:`MemoryResponseCache` keeps entries in this process (least recently used go first);
:class:`RedisResponseCache` shares them through Redis (orjson bytes, ``SET … PX``). Both
store a serialized copy, so a caller may change what it got. A Redis failure never fails a
request: ``get`` answers a miss, ``put`` does nothing, and a warning is logged now and then.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from modelyard.gateway.redis_client import RedisGuard
from modelyard.ttl_cache import TTLCache

__all__ = [
    "EXCLUDED_FIELDS",
    "MemoryResponseCache",
    "RedisResponseCache",
    "ResponseCache",
    "cache_key",
]

logger = logging.getLogger("modelyard.gateway.cache")

#: Request fields that do not change the response, left out of the key.
EXCLUDED_FIELDS = frozenset({"stream", "stream_options", "user"})

#: Bumped when the key's recipe changes, so old entries are never matched.
KEY_VERSION = 2


def cache_key(body: Mapping[str, Any], *, namespace: str = "chat.completions") -> str:
    """The cache key (64 hex digits) of the request ``body`` (see the module docstring)."""
    fields = {k: v for k, v in body.items() if k not in EXCLUDED_FIELDS and v is not None}
    canonical = orjson.dumps(
        {"v": KEY_VERSION, "namespace": namespace, "request": fields},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()


class ResponseCache(Protocol):
    """Where cached responses live."""

    async def get(self, key: str) -> dict[str, Any] | None:
        """The response stored under ``key``, or None (a miss)."""
        ...

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (nothing when ``ttl <= 0``)."""
        ...


def _encode(value: dict[str, Any]) -> bytes | None:
    try:
        return orjson.dumps(value)
    except TypeError as error:  # orjson.JSONEncodeError is a TypeError
        logger.warning("Response not cached: it cannot be serialized (%s)", error)
        return None


def _decode(data: bytes | str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        logger.warning("Ignoring a cached response that is not valid JSON")
        return None
    return value if isinstance(value, dict) else None


class MemoryResponseCache:
    """Entries in this process: at most ``max_entries``, the least recently used go first."""

    def __init__(
        self, max_entries: int = 1000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: TTLCache[str, bytes] = TTLCache(
            ttl=0, max_size=max_entries, clock=clock, lru=True
        )

    async def get(self, key: str) -> dict[str, Any] | None:
        data = self._entries.get(key)
        return None if data is None else _decode(data)

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        if ttl <= 0:
            return
        data = _encode(value)
        if data is not None:
            self._entries.put(key, data, ttl=ttl)

    def __len__(self) -> int:
        return len(self._entries)


class RedisResponseCache:
    """Entries shared through Redis under ``{prefix}response:{key}``."""

    def __init__(
        self, redis: Redis, prefix: str = "modelyard:", *, guard: RedisGuard | None = None
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.guard = guard or RedisGuard("the response cache")

    def _key(self, key: str) -> str:
        return f"{self.prefix}response:{key}"

    async def get(self, key: str) -> dict[str, Any] | None:
        async def run() -> bytes | str | None:
            return await self.redis.get(self._key(key))

        data = await self.guard.run(run, None)
        return None if data is None else _decode(data)

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        ttl_ms = int(ttl * 1000)
        if ttl_ms <= 0:
            return
        data = _encode(value)
        if data is None:
            return

        async def run() -> None:
            await self.redis.set(self._key(key), data, px=ttl_ms)

        await self.guard.run(run, None)
