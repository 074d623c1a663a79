"""A Redis client for the gateway's shared state, and a guard that keeps Redis optional.

:func:`create_redis` builds a :class:`redis.asyncio.Redis` with short timeouts and a
single immediate retry, so an unreachable Redis costs a request milliseconds, not seconds.

:class:`RedisGuard` runs one Redis operation and, when Redis fails (refused, timed out,
reset), returns a fallback instead of raising, stops calling Redis for ``backoff`` seconds,
and logs a warning at most once per ``warn_every`` seconds (with how many failures it
did not log). The stores in :mod:`~modelyard.gateway.cooldown` and
:mod:`~modelyard.gateway.response_cache` use it to fail open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = ["REDIS_ERRORS", "RedisGuard", "create_redis"]

logger = logging.getLogger("modelyard.gateway.redis")

T = TypeVar("T")

#: What counts as "Redis is not working" (as opposed to a bug in the caller).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


def create_redis(url: str, *, socket_timeout: float = 1.0, connect_timeout: float = 0.5) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``); bytes in and out."""
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
        decode_responses=False,
    )


class RedisGuard:
    """Runs Redis operations, answering a fallback while Redis is failing."""

    def __init__(
        self,
        what: str,
        *,
        backoff: float = 1.0,
        warn_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.backoff = backoff
        self.warn_every = warn_every
        self._clock = clock
        self._down_until = float("-inf")
        self._last_warning = float("-inf")
        self._unlogged = 0
        #: Failures seen since this guard was made (for tests and metrics).
        self.failures = 0

    def is_down(self) -> bool:
        """Whether Redis failed a moment ago (calls answer the fallback until then)."""
        return self._clock() < self._down_until

    async def run(self, operation: Callable[[], Awaitable[T]], fallback: T) -> T:
        """``await operation()``, or ``fallback`` when Redis fails or failed a moment ago."""
        if self.is_down():
            return fallback
        try:
            return await operation()
        except REDIS_ERRORS as error:
            self.note_failure(error)
            return fallback

    def note_failure(self, error: BaseException) -> None:
        """Count a failure, pause Redis calls, and log now and then."""
        now = self._clock()
        self.failures += 1
        self._down_until = now + self.backoff
        if now - self._last_warning < self.warn_every:
            self._unlogged += 1
            return
        logger.warning(
            "Redis unavailable for %s (%s: %s); failing open%s",
            self.what,
            type(error).__name__,
            error,
            f" ({self._unlogged} more failures since the last warning)" if self._unlogged else "",
        )
        self._last_warning = now
        self._unlogged = 0
