"""Login throttling: too many failed sign-ins for one account, or from one address, wait.

Failures are counted in fixed windows of :data:`WINDOW_SECONDS`, per e-mail address and
per client address; past :data:`MAX_FAILURES_PER_ACCOUNT` (or
:data:`MAX_FAILURES_PER_ADDRESS`) further attempts get 429 with ``Retry-After`` until the
window ends — even with the right password, so guessing gains nothing. A success clears
the account's count. With Redis the counts are shared by every process; without, each
process counts its own.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.accounts.errors import InvalidCredentials
from modelyard.accounts.users import authenticate
from modelyard.db.models import User
from modelyard.errors import RateLimitError

__all__ = ["LoginThrottle", "authenticate_throttled"]

logger = logging.getLogger("modelyard.accounts")

WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 30
#: Past this many memory entries, those of past windows are dropped.
MEMORY_ENTRIES = 10_000


class LoginThrottle:
    def __init__(self, redis: Redis | None = None, prefix: str = "modelyard:") -> None:
        self.redis = redis
        self.prefix = f"{prefix}login:"
        self._memory: dict[str, tuple[int, int]] = {}

    @staticmethod
    def _window(now: float) -> int:
        return int(now // WINDOW_SECONDS)

    def _keys(self, email: str, address: str | None) -> list[tuple[str, int]]:
        keys = [(f"account:{email.strip().lower()}", MAX_FAILURES_PER_ACCOUNT)]
        if address:
            keys.append((f"address:{address}", MAX_FAILURES_PER_ADDRESS))
        return keys

    async def _count(self, key: str, window: int) -> int:
        if self.redis is not None:
            try:
                return int(await self.redis.get(f"{self.prefix}{key}:{window}") or 0)
            except RedisError:
                logger.warning("login throttle: Redis failed; counting in this process")
        seen_window, count = self._memory.get(key, (window, 0))
        return count if seen_window == window else 0

    async def check(self, email: str, address: str | None) -> None:
        """Raise 429 when this account or address failed too often in this window."""
        now = time.time()
        window = self._window(now)
        for key, limit in self._keys(email, address):
            if await self._count(key, window) >= limit:
                retry = int((window + 1) * WINDOW_SECONDS - now) + 1
                raise RateLimitError(
                    f"Too many failed sign-ins; try again in {retry // 60 + 1} minutes "
                    "or ask an administrator to reset your password.",
                    retry_after=retry,
                    code="login_throttled",
                )

    async def failed(self, email: str, address: str | None) -> None:
        window = self._window(time.time())
        for key, _limit in self._keys(email, address):
            if self.redis is not None:
                name = f"{self.prefix}{key}:{window}"
                try:
                    async with self.redis.pipeline(transaction=True) as pipe:
                        pipe.incr(name)
                        pipe.expire(name, WINDOW_SECONDS + 60)
                        await pipe.execute()
                    continue
                except RedisError:
                    logger.warning("login throttle: Redis failed; counting in this process")
            if len(self._memory) > MEMORY_ENTRIES:
                self._memory = {k: v for k, v in self._memory.items() if v[0] == window}
            self._memory[key] = (window, await self._count(key, window) + 1)

    async def succeeded(self, email: str) -> None:
        key = f"account:{email.strip().lower()}"
        self._memory.pop(key, None)
        if self.redis is not None:
            try:
                await self.redis.delete(f"{self.prefix}{key}:{self._window(time.time())}")
            except RedisError:
                logger.warning("login throttle: Redis failed; the count expires on its own")


async def authenticate_throttled(
    session: AsyncSession,
    throttle: LoginThrottle,
    *,
    email: str,
    password: str,
    address: str | None,
) -> User:
    """:func:`~modelyard.accounts.users.authenticate`, refused with 429 after too many
    failures; raises :class:`InvalidCredentials` (counted) or :class:`RateLimitError`."""
    await throttle.check(email, address)
    try:
        user = await authenticate(session, email=email, password=password)
    except InvalidCredentials:
        await throttle.failed(email, address)
        raise
    await throttle.succeeded(email)
    return user
