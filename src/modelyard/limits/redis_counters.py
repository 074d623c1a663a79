"""The limits' counters in Redis, shared by every process using the same Redis and prefix.

Same semantics as :class:`~modelyard.limits.counters.MemoryCounters`; each operation is
one Lua script (atomic). Times come from the caller's clock (the processes' clocks must
agree, as NTP keeps them), so the windows and periods match the memory store's. The keys
of one request share the user's hash tag (``{u<id>}``: one Redis Cluster slot)::

    <prefix>limits:{u42}:t7:rpm:<minute>   requests this minute      (expires after 120 s)
    <prefix>limits:{u42}:t7:tpm:<minute>   tokens this minute        (expires after 120 s)
    <prefix>limits:{u42}:t7:spend:<key>    hash: spent, count        (expires after the period)
    <prefix>limits:{u42}:t7:flights        zset: reservation → expiry (ms)

When Redis fails, an operation answers None (through :class:`RedisGuard`, which logs and
backs off); the enforcer then uses its in-process counters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from redis.asyncio import Redis

from modelyard.gateway.redis_client import RedisGuard
from modelyard.limits.counters import (
    WINDOW_SECONDS,
    Granted,
    LimitName,
    NeedsSpend,
    Plan,
    Refused,
    Settlement,
    SubjectUsage,
    Verdict,
)

__all__ = ["RedisCounters"]

# KEYS: per plan rpm, tpm, spend, flights.
# ARGV: now (ms), hold (ms), estimated tokens, reservation id, window (ms), then per plan
#       rpm, tpm, budget (-1: none).
# Returns {'ok', share...}, {'init', index} or {'<limit>', index, used, held, in flight}.
_ADMIT = """
local now = tonumber(ARGV[1])
local hold = tonumber(ARGV[2])
local est = tonumber(ARGV[3])
local n = #KEYS / 4
local shares = {}
for i = 1, n do
  local k, a = (i - 1) * 4, 5 + (i - 1) * 3
  local rpm, tpm, budget = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local requests = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
  if rpm >= 0 and requests + 1 > rpm then return {'requests_per_minute', i, requests, 0, 0} end
  local tokens = tonumber(redis.call('GET', KEYS[k + 2]) or '0')
  if tpm >= 0 and tokens + est > tpm then return {'tokens_per_minute', i, tokens, 0, 0} end
  shares[i] = 0
  if budget >= 0 then
    local spend = redis.call('HMGET', KEYS[k + 3], 'spent', 'count')
    if not spend[1] then return {'init', i} end
    local spent, count = tonumber(spend[1]), tonumber(spend[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 4], '-inf', now)
    local held, flights = 0, 0
    for _, member in ipairs(redis.call('ZRANGE', KEYS[k + 4], 0, -1)) do
      held = held + tonumber(string.match(member, ':(%d+)$'))
      flights = flights + 1
    end
    if spent + held >= budget then return {'budget', i, spent, held, flights} end
    if count > 0 then shares[i] = math.floor(spent / count) end
  end
end
for i = 1, n do
  local k = (i - 1) * 4
  redis.call('INCR', KEYS[k + 1])
  redis.call('PEXPIRE', KEYS[k + 1], ARGV[5])
  redis.call('INCRBY', KEYS[k + 2], ARGV[3])
  redis.call('PEXPIRE', KEYS[k + 2], ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 4], '-inf', now)
  redis.call('ZADD', KEYS[k + 4], now + hold, ARGV[4] .. ':' .. string.format('%d', shares[i]))
  redis.call('PEXPIRE', KEYS[k + 4], hold)
end
local answer = {'ok'}
for i = 1, n do answer[i + 1] = shares[i] end
return answer
"""

# KEYS: spend. ARGV: spent, count, time to live (ms).
_INIT_SPEND = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'count', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: per item tpm, flights, spend. ARGV: per item token delta, reservation ('' for
# none), spend units, '1' when the spend counts.
_SETTLE = """
for i = 1, #KEYS / 3 do
  local k, a = (i - 1) * 3, (i - 1) * 4
  if ARGV[a + 1] ~= '0' and redis.call('EXISTS', KEYS[k + 1]) == 1 then
    redis.call('INCRBY', KEYS[k + 1], ARGV[a + 1])
  end
  if ARGV[a + 2] ~= '' then redis.call('ZREM', KEYS[k + 2], ARGV[a + 2]) end
  if ARGV[a + 4] == '1' and redis.call('EXISTS', KEYS[k + 3]) == 1 then
    redis.call('HINCRBY', KEYS[k + 3], 'spent', ARGV[a + 3])
    if tonumber(ARGV[a + 3]) > 0 then redis.call('HINCRBY', KEYS[k + 3], 'count', 1) end
  end
end
return 1
"""

_UNUSED = "-"


def _ms(seconds: float) -> int:
    return max(math.ceil(seconds * 1000), 1)


class RedisCounters:
    """Counters shared through Redis by every process using the same ``prefix``."""

    def __init__(self, redis: Redis, prefix: str = "", *, guard: RedisGuard | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.guard = guard or RedisGuard("limits")
        self._admit = redis.register_script(_ADMIT)
        self._init_spend = redis.register_script(_INIT_SPEND)
        self._settle = redis.register_script(_SETTLE)

    def key(self, group: str, subject: str, *parts: str | int) -> str:
        """The Redis key of one of ``subject``'s counters (hash tag: the user)."""
        return ":".join([f"{self.prefix}limits:{{{group}}}:{subject}", *map(str, parts)])

    async def admit(
        self,
        group: str,
        plans: Sequence[Plan],
        *,
        now: float,
        minute: int,
        estimated_tokens: int,
        reservation_id: str,
        hold_seconds: float,
    ) -> Verdict | None:
        keys: list[str] = []
        args: list[str | int] = [
            math.floor(now * 1000),
            _ms(hold_seconds),
            estimated_tokens,
            reservation_id,
            WINDOW_SECONDS * 1000,
        ]
        for plan in plans:
            keys += [
                self.key(group, plan.subject, "rpm", minute),
                self.key(group, plan.subject, "tpm", minute),
                self.key(group, plan.subject, "spend", plan.spend_key or _UNUSED),
                self.key(group, plan.subject, "flights"),
            ]
            budget = plan.budget if plan.spend_key is not None else None
            for limit in (plan.requests_per_minute, plan.tokens_per_minute, budget):
                args.append(-1 if limit is None else limit)

        async def run() -> Verdict:
            answer = await self._admit(keys=keys, args=args)
            outcome = answer[0].decode()
            if outcome == "ok":
                return Granted(tuple(int(share) for share in answer[1:]))
            index = int(answer[1]) - 1
            if outcome == "init":
                return NeedsSpend(index)
            limit: LimitName
            if outcome == "requests_per_minute":
                limit = "requests_per_minute"
            elif outcome == "tokens_per_minute":
                limit = "tokens_per_minute"
            else:
                limit = "budget"
            used, held, flights = (int(value) for value in answer[2:5])
            return Refused(index, limit, used, held, flights)

        return await self.guard.run(run, None)

    async def init_spend(
        self, group: str, subject: str, spend_key: str, *, spent: int, count: int, ttl: float
    ) -> bool | None:
        keys = [self.key(group, subject, "spend", spend_key)]
        args: list[str | int] = [spent, count, _ms(ttl)]

        async def run() -> bool:
            return bool(await self._init_spend(keys=keys, args=args))

        return await self.guard.run(run, None)

    async def settle(self, group: str, items: Sequence[Settlement]) -> bool | None:
        keys: list[str] = []
        args: list[str | int] = []
        for item in items:
            keys += [
                self.key(
                    group, item.subject, "tpm", item.minute if item.minute is not None else _UNUSED
                ),
                self.key(group, item.subject, "flights"),
                self.key(group, item.subject, "spend", item.spend_key or _UNUSED),
            ]
            delta = item.token_delta if item.minute is not None else 0
            args += [delta, item.reservation or "", item.spend_units]
            args.append("1" if item.spend_key is not None else "0")
        if not keys:
            return True

        async def run() -> bool:
            await self._settle(keys=keys, args=args)
            return True

        return await self.guard.run(run, None)

    async def usage(
        self, group: str, subject: str, *, now: float, minute: int, spend_key: str | None
    ) -> SubjectUsage | None:
        async def run() -> SubjectUsage:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(self.key(group, subject, "rpm", minute))
                pipe.get(self.key(group, subject, "tpm", minute))
                pipe.zcount(
                    self.key(group, subject, "flights"), f"({math.floor(now * 1000)}", "+inf"
                )
                pipe.hget(self.key(group, subject, "spend", spend_key or _UNUSED), "spent")
                requests, tokens, flights, spent = await pipe.execute()
            return SubjectUsage(
                requests=int(requests or 0),
                tokens=int(tokens or 0),
                in_flight=int(flights),
                spent=int(spent) if spent is not None and spend_key is not None else None,
            )

        return await self.guard.run(run, None)
