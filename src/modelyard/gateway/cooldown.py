"""Cooldowns: one circuit breaker per (provider kind, model, key), in memory or in Redis.

A breaker is *closed* (calls go through), *open* (calls are skipped until a moment has
passed) or *half-open* (the open period has passed: exactly one caller — the probe — is let
through; the others are refused until the probe reports back or ``probe_timeout`` passes).
What a failure does depends on its :data:`~modelyard.gateway.upstream_errors.Category`
(see :class:`CooldownPolicy`):

- ``rate_limited``: open for the upstream's Retry-After, exactly (``rate_limit_default``
  when it sent none);
- ``unauthorized``: open for ``unauthorized`` seconds — the key is treated as invalid for a
  while;
- ``server``, ``timeout``, ``connection``, ``protocol``: consecutive failures are counted;
  at ``failure_threshold`` the breaker opens for ``base_cooldown``, doubled on each re-open
  (a failed probe re-opens at once) up to ``max_cooldown``;
- ``not_found`` (this target lacks the model): open for ``not_found`` seconds when that is
  above 0 — by default it has no effect, so a lone target still answers its own 404;
- ``client``: no effect (the request was at fault, not the target), except that a probe
  answered this way hands its turn to the next caller. The dispatcher does not even report
  these as failures: it calls :meth:`CooldownStore.release` instead.

An open period is never shortened by a later failure (a straggler's short Retry-After does
not cut a long "invalid key" period). A success closes the breaker and forgets the counts.

:class:`MemoryCooldowns` serves one process; :class:`RedisCooldowns` is shared by every
process using the same Redis and prefix (each operation is one atomic Lua script, the
probe a ``SET NX PX`` lease, times are Redis's own). When Redis is unreachable the Redis
store fails open: every call is allowed and a warning is logged now and then.

Breakers are named by :func:`target_id`, which holds a :func:`key_fingerprint` — never a
key — so the name is safe in Redis keys, metrics and logs — and, for a user's own key, the
user (its ``scope``): what one user's key does never cools down a shared key, nor another
user's, even when the key strings are equal.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from redis.asyncio import Redis

from modelyard.gateway.redis_client import RedisGuard
from modelyard.ttl_cache import TTLCache

__all__ = [
    "DEFAULT_POLICY",
    "TRANSIENT_CATEGORIES",
    "BreakerState",
    "CooldownPolicy",
    "CooldownStore",
    "MemoryCooldowns",
    "RedisCooldowns",
    "key_fingerprint",
    "target_id",
]

#: Failure categories that are counted towards ``failure_threshold``.
TRANSIENT_CATEGORIES = frozenset({"server", "timeout", "connection", "protocol"})


def key_fingerprint(api_key: str | None) -> str:
    """A short, stable, non-reversible id of ``api_key``: 12 hex digits of its SHA-256
    (``"keyless"`` for no key)."""
    if not api_key:
        return "keyless"
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def target_id(kind: str, model: str, api_key: str | None, scope: str | None = None) -> str:
    """The breaker's name for ``model`` at provider ``kind`` with ``api_key``; ``scope``
    (e.g. ``"user-12"``) gives a key of one user's a breaker of its own."""
    name = f"{kind}:{model}:{key_fingerprint(api_key)}"
    return f"{name}:{scope}" if scope else name


@dataclass(frozen=True)
class CooldownPolicy:
    """How long breakers stay open; all durations in seconds."""

    #: Open period after a 429 that carried no Retry-After.
    rate_limit_default: float = 30.0
    #: Retry-After values above this are capped (a provider asking for a day is not obeyed).
    rate_limit_max: float = 3600.0
    #: Open period after a 401/403: the key is treated as invalid for this long.
    unauthorized: float = 300.0
    #: Open period after a 404 for the model at this target; 0: no effect.
    not_found: float = 0.0
    #: Consecutive transient failures (server, timeout, connection, protocol) that open it.
    failure_threshold: int = 3
    #: First open period after ``failure_threshold`` transient failures; doubles on each
    #: re-open until a success.
    base_cooldown: float = 5.0
    #: Upper bound of the doubling cooldown.
    max_cooldown: float = 300.0
    #: A probe that has not reported back after this long lets another caller probe.
    probe_timeout: float = 30.0
    #: A breaker untouched this long (and not open) is forgotten: counts start again.
    forget_after: float = 3600.0

    def hold_for(self, category: str, retry_after: float | None) -> float | None:
        """The fixed open period for a ``rate_limited``, ``unauthorized`` or ``not_found``
        failure, else None."""
        if category == "rate_limited":
            if retry_after is None:
                return self.rate_limit_default
            return min(max(retry_after, 0.0), self.rate_limit_max)
        if category == "unauthorized":
            return self.unauthorized
        if category == "not_found" and self.not_found > 0:
            return self.not_found
        return None

    def cooldown(self, opens: int) -> float:
        """The open period after ``opens`` earlier re-opens since the last success."""
        return min(self.base_cooldown * 2.0 ** min(opens, 64), self.max_cooldown)


#: The policy used unless a store is given another.
DEFAULT_POLICY = CooldownPolicy()

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerState:
    """A breaker as seen by metrics, the admin panel and tests."""

    state: State
    #: Open period after a 404 for the model at this target; 0: no effect.
    not_found: float = 0.0
    #: Consecutive transient failures since the last success.
    failures: int = 0
    #: When the open period ends (the store's clock; Redis: Unix time), if it was opened.
    until: float | None = None
    #: Seconds left in the open period (0 unless open).
    remaining: float = 0.0
    #: The failure category that last opened it.
    reason: str | None = None


CLOSED = BreakerState("closed")


class CooldownStore(Protocol):
    """Where breakers live; see the module docstring for the rules."""

    async def allow(self, target_id: str) -> bool:
        """Whether a call to ``target_id`` may go ahead now (True once when half-open)."""
        ...

    async def record_success(self, target_id: str) -> None:
        """A call succeeded: close the breaker."""
        ...

    async def record_failure(
        self, target_id: str, category: str, retry_after: float | None = None
    ) -> None:
        """A call failed with ``category`` (Retry-After in seconds, if the upstream sent one)."""
        ...

    async def release(self, target_id: str) -> None:
        """A call was answered in a way that says nothing about the target (the request's
        own fault): nothing is counted; a probe hands its turn to the next caller."""
        ...

    async def state(self, target_id: str) -> BreakerState: ...


@dataclass
class _Breaker:
    failures: int = 0
    opens: int = 0
    #: None while closed; once opened, stays set (half-open after it passes) until a success.
    open_until: float | None = None
    probe_until: float = field(default=-math.inf)
    reason: str | None = None


class MemoryCooldowns:
    """Breakers in this process only; ``clock`` (seconds) is injectable for tests."""

    def __init__(
        self,
        policy: CooldownPolicy = DEFAULT_POLICY,
        *,
        clock: Callable[[], float] = time.time,
        max_breakers: int = 100_000,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._breakers: TTLCache[str, _Breaker] = TTLCache(
            ttl=policy.forget_after, max_size=max_breakers, clock=clock
        )

    async def allow(self, target_id: str) -> bool:
        breaker = self._breakers.get(target_id)
        if breaker is None or breaker.open_until is None:
            return True
        now = self._clock()
        if now < breaker.open_until or now < breaker.probe_until:
            return False
        breaker.probe_until = now + self.policy.probe_timeout
        return True

    async def record_success(self, target_id: str) -> None:
        self._breakers.discard(target_id)

    async def release(self, target_id: str) -> None:
        if (breaker := self._breakers.get(target_id)) is not None:
            breaker.probe_until = -math.inf  # a probe's answer proved nothing: next one

    async def record_failure(
        self, target_id: str, category: str, retry_after: float | None = None
    ) -> None:
        hold = self.policy.hold_for(category, retry_after)
        if hold is None and category not in TRANSIENT_CATEGORIES:
            await self.release(target_id)
            return
        now = self._clock()
        breaker = self._breakers.get(target_id) or _Breaker()
        is_open = breaker.open_until is not None and now < breaker.open_until
        if hold is None:
            breaker.failures += 1
            if not is_open and breaker.failures >= self.policy.failure_threshold:
                hold = self.policy.cooldown(breaker.opens)
                breaker.opens += 1
        if hold is not None and (breaker.open_until is None or now + hold > breaker.open_until):
            breaker.open_until = now + hold
            breaker.probe_until = -math.inf
            breaker.reason = category
        left = breaker.open_until - now if breaker.open_until is not None else 0.0
        ttl = max(self.policy.forget_after, left + self.policy.probe_timeout)
        self._breakers.put(target_id, breaker, ttl=ttl)

    async def state(self, target_id: str) -> BreakerState:
        breaker = self._breakers.get(target_id)
        if breaker is None:
            return CLOSED
        if breaker.open_until is None:
            return BreakerState("closed", failures=breaker.failures)
        remaining = max(breaker.open_until - self._clock(), 0.0)
        return BreakerState(
            "open" if remaining > 0 else "half_open",
            failures=breaker.failures,
            until=breaker.open_until,
            remaining=remaining,
            reason=breaker.reason,
        )


# KEYS: state hash, open marker, probe lease. ARGV: probe lease (ms).
# Returns 0 (refused), 1 (allowed) or 2 (allowed, and nothing is recorded: no failures).
_ALLOW = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local tripped = redis.call('HGET', KEYS[1], 'tripped')
if tripped ~= '1' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 2 end
  return 1
end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""
#: Breakers remembered as clean at once, at most (the memory is cleared beyond).
MAX_CLEAN = 10_000
#: Seconds a breaker found clean (nothing recorded) is allowed again without asking Redis.
CLEAN_SECONDS = 0.5

# KEYS: state hash, open marker, probe lease.
# ARGV: hold (ms, or -1 to count a transient failure), threshold, base (ms), cap (ms),
#       forget (ms), probe lease (ms), reason.
# Returns the open period set (ms), or 0 when it did not (re)open the breaker.
_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left = redis.call('PTTL', KEYS[2])
local hold = tonumber(ARGV[1])
local forget = tonumber(ARGV[5])
local probe = tonumber(ARGV[6])
if hold < 0 then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('PEXPIRE', KEYS[1], math.max(forget, left + probe))
  if left > 0 or failures < tonumber(ARGV[2]) then return 0 end
  local opens = tonumber(redis.call('HGET', KEYS[1], 'opens') or '0')
  hold = math.floor(math.min(tonumber(ARGV[3]) * 2 ^ math.min(opens, 64), tonumber(ARGV[4])))
  redis.call('HSET', KEYS[1], 'opens', opens + 1)
elseif left >= hold then
  return 0
end
hold = math.max(hold, 1)
redis.call('SET', KEYS[2], string.format('%d', now + hold), 'PX', hold)
redis.call('HSET', KEYS[1], 'tripped', '1', 'reason', ARGV[7])
redis.call('PEXPIRE', KEYS[1], math.max(forget, hold + probe))
redis.call('DEL', KEYS[3])
return hold
"""


def _ms(seconds: float) -> int:
    return max(math.ceil(seconds * 1000), 1)


class RedisCooldowns:
    """Breakers shared through Redis by every process using the same ``prefix``.

    A breaker that Redis says is clean (no failures recorded, not tripped) is allowed
    again for :data:`CLEAN_SECONDS` without asking, and a success on it sends nothing:
    there is nothing to forget. Each was a Redis round trip per request (about 0.1 ms of
    a worker's CPU each, ``python -m bench.deployment``). So a breaker another process
    opens is seen here within half a second — at once after this process's own failure
    on it, which drops what was remembered — and a failure another process records is
    forgotten by that process's next success rather than this one's.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str = "modelyard:",
        policy: CooldownPolicy = DEFAULT_POLICY,
        *,
        guard: RedisGuard | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.policy = policy
        self.guard = guard or RedisGuard("cooldowns")
        self._allow = redis.register_script(_ALLOW)
        self._failure = redis.register_script(_FAILURE)
        #: Breaker → when (``time.monotonic()``) an ``allow`` here last found it clean.
        self._clean: dict[str, float] = {}

    def _keys(self, target_id: str) -> list[str]:
        # One hash tag: the three keys land in the same Redis Cluster slot.
        base = f"{self.prefix}cooldown:{{{target_id}}}"
        return [f"{base}:state", f"{base}:open", f"{base}:probe"]

    async def allow(self, target_id: str) -> bool:
        seen = self._clean.get(target_id)
        if seen is not None and time.monotonic() - seen < CLEAN_SECONDS:
            return True
        keys = self._keys(target_id)
        probe_ms = _ms(self.policy.probe_timeout)

        async def run() -> bool:
            answer = int(await self._allow(keys=keys, args=[probe_ms]))
            if answer == 2:
                if len(self._clean) >= MAX_CLEAN:
                    self._clean.clear()
                self._clean[target_id] = time.monotonic()
            else:
                self._clean.pop(target_id, None)
            return answer > 0

        return await self.guard.run(run, True)

    async def record_success(self, target_id: str) -> None:
        if target_id in self._clean:
            return  # nothing recorded when it was allowed: nothing to forget
        keys = self._keys(target_id)

        async def run() -> None:
            await self.redis.delete(*keys)

        await self.guard.run(run, None)

    async def release(self, target_id: str) -> None:
        self._clean.pop(target_id, None)
        probe = self._keys(target_id)[2]

        async def run() -> None:
            await self.redis.delete(probe)

        await self.guard.run(run, None)

    async def record_failure(
        self, target_id: str, category: str, retry_after: float | None = None
    ) -> None:
        self._clean.pop(target_id, None)
        keys = self._keys(target_id)
        hold = self.policy.hold_for(category, retry_after)
        if hold is None and category not in TRANSIENT_CATEGORIES:
            await self.release(target_id)
            return
        policy = self.policy
        args: list[str | int] = [
            -1 if hold is None else _ms(hold),
            policy.failure_threshold,
            _ms(policy.base_cooldown),
            _ms(policy.max_cooldown),
            _ms(policy.forget_after),
            _ms(policy.probe_timeout),
            category,
        ]

        async def run() -> None:
            await self._failure(keys=keys, args=args)

        await self.guard.run(run, None)

    async def state(self, target_id: str) -> BreakerState:
        """The breaker's state (closed when Redis is unreachable: the store fails open)."""
        state_key, open_key, _probe = self._keys(target_id)

        async def run() -> BreakerState:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(state_key)
                pipe.get(open_key)
                pipe.pttl(open_key)
                fields, until_ms, left_ms = await pipe.execute()
            failures = int(fields.get(b"failures", 0))
            if fields.get(b"tripped") != b"1":
                return BreakerState("closed", failures=failures)
            reason = fields.get(b"reason")
            open_ = until_ms is not None and left_ms > 0
            return BreakerState(
                "open" if open_ else "half_open",
                failures=failures,
                until=int(until_ms) / 1000 if until_ms is not None else None,
                remaining=left_ms / 1000 if open_ else 0.0,
                reason=reason.decode() if reason is not None else None,
            )

        return await self.guard.run(run, CLOSED)
