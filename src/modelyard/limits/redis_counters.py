"""The limits' counters in Redis, shared by every process using the same Redis and prefix.

Same semantics as :class:`~modelyard.limits.counters.MemoryCounters`; each operation is
atomic (Lua). Admissions and settlements are queued and sent in batches, one script call
per user (:mod:`~modelyard.limits.redis_outbox`): a settlement reaches Redis with the
process's next admission or within 50 ms, and :meth:`RedisCounters.usage` sends what is
queued before it reads. Times come from the caller's clock (the processes' clocks must
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
from typing import Any

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
from modelyard.limits.redis_outbox import Outbox

__all__ = ["RedisCounters"]

# One group's queued operations, applied in order (see redis_outbox). KEYS: every
# operation's keys. ARGV: per operation a header and its arguments:
#   'a' (admit): now (ms), hold (ms), estimated tokens, reservation id, window (ms), plans,
#       then per plan rpm, tpm, budget (-1: none); keys per plan: rpm, tpm, spend, flights.
#       Answers {'ok', share...}, {'init', index} or {'<limit>', index, used, held, flights}.
#   's' (settle): items, then per item token delta, reservation ('' for none), spend units,
#       '1' when the spend counts; keys per item: tpm, flights, spend.
# Returns the admissions' answers, in order.
_BATCH = """
local function admit(k, a, n)
  local now, hold, est = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local shares = {}
  for i = 1, n do
    local kk, aa = k + (i - 1) * 4, a + 7 + (i - 1) * 3
    local rpm, tpm, budget = tonumber(ARGV[aa]), tonumber(ARGV[aa + 1]), tonumber(ARGV[aa + 2])
    local requests = tonumber(redis.call('GET', KEYS[kk + 1]) or '0')
    if rpm >= 0 and requests + 1 > rpm then return {'requests_per_minute', i, requests, 0, 0} end
    local tokens = tonumber(redis.call('GET', KEYS[kk + 2]) or '0')
    if tpm >= 0 and tokens + est > tpm then return {'tokens_per_minute', i, tokens, 0, 0} end
    shares[i] = 0
    if budget >= 0 then
      local spend = redis.call('HMGET', KEYS[kk + 3], 'spent', 'count')
      if not spend[1] then return {'init', i} end
      local spent, count = tonumber(spend[1]), tonumber(spend[2])
      redis.call('ZREMRANGEBYSCORE', KEYS[kk + 4], '-inf', now)
      local held, flights = 0, 0
      for _, member in ipairs(redis.call('ZRANGE', KEYS[kk + 4], 0, -1)) do
        held = held + tonumber(string.match(member, ':(%d+)$'))
        flights = flights + 1
      end
      if spent + held >= budget then return {'budget', i, spent, held, flights} end
      if count > 0 then shares[i] = math.floor(spent / count) end
    end
  end
  for i = 1, n do
    local kk = k + (i - 1) * 4
    redis.call('INCR', KEYS[kk + 1])
    redis.call('PEXPIRE', KEYS[kk + 1], ARGV[a + 5])
    redis.call('INCRBY', KEYS[kk + 2], est)
    redis.call('PEXPIRE', KEYS[kk + 2], ARGV[a + 5])
    redis.call('ZREMRANGEBYSCORE', KEYS[kk + 4], '-inf', now)
    local member = ARGV[a + 4] .. ':' .. string.format('%d', shares[i])
    redis.call('ZADD', KEYS[kk + 4], now + hold, member)
    redis.call('PEXPIRE', KEYS[kk + 4], hold)
  end
  local answer = {'ok'}
  for i = 1, n do answer[i + 1] = shares[i] end
  return answer
end

local function settle(k, a, n)
  for i = 1, n do
    local kk, aa = k + (i - 1) * 3, a + (i - 1) * 4
    if ARGV[aa] ~= '0' and redis.call('EXISTS', KEYS[kk + 1]) == 1 then
      redis.call('INCRBY', KEYS[kk + 1], ARGV[aa])
    end
    if ARGV[aa + 1] ~= '' then redis.call('ZREM', KEYS[kk + 2], ARGV[aa + 1]) end
    if ARGV[aa + 3] == '1' and redis.call('EXISTS', KEYS[kk + 3]) == 1 then
      redis.call('HINCRBY', KEYS[kk + 3], 'spent', ARGV[aa + 2])
      if tonumber(ARGV[aa + 2]) > 0 then redis.call('HINCRBY', KEYS[kk + 3], 'count', 1) end
    end
  end
end

local answers, k, a = {}, 0, 1
while a <= #ARGV do
  if ARGV[a] == 'a' then
    local n = tonumber(ARGV[a + 6])
    answers[#answers + 1] = admit(k, a, n)
    k, a = k + 4 * n, a + 7 + 3 * n
  else
    local n = tonumber(ARGV[a + 1])
    settle(k, a + 2, n)
    k, a = k + 3 * n, a + 2 + 4 * n
  end
end
return answers
"""

# KEYS: spend. ARGV: spent, count, time to live (ms).
_INIT_SPEND = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'count', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_UNUSED = "-"


def _ms(seconds: float) -> int:
    return max(math.ceil(seconds * 1000), 1)


def _verdict(answer: list[Any]) -> Verdict:
    """The admission script's answer as a verdict."""
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


class RedisCounters:
    """Counters shared through Redis by every process using the same ``prefix``."""

    def __init__(self, redis: Redis, prefix: str = "", *, guard: RedisGuard | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.guard = guard or RedisGuard("limits")
        self._init_spend = redis.register_script(_INIT_SPEND)
        #: Admissions and settlements, sent in batches (see :mod:`.redis_outbox`).
        self.outbox = Outbox(redis, redis.register_script(_BATCH), self.guard)

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
        if self.guard.is_down():
            return None
        keys: list[str] = []
        args: list[str | int] = [
            "a",
            math.floor(now * 1000),
            _ms(hold_seconds),
            estimated_tokens,
            reservation_id,
            WINDOW_SECONDS * 1000,
            len(plans),
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
        answer = await self.outbox.admit(group, keys, args)
        return None if answer is None else _verdict(answer)

    async def init_spend(
        self, group: str, subject: str, spend_key: str, *, spent: int, count: int, ttl: float
    ) -> bool | None:
        await self.flush()  # what was settled before comes first, as in memory
        keys = [self.key(group, subject, "spend", spend_key)]
        args: list[str | int] = [spent, count, _ms(ttl)]

        async def run() -> bool:
            return bool(await self._init_spend(keys=keys, args=args))

        return await self.guard.run(run, None)

    async def settle(self, group: str, items: Sequence[Settlement]) -> bool | None:
        """Queue the settlements (see :mod:`.redis_outbox`); None while Redis is failing."""
        if self.guard.is_down():
            return None
        keys: list[str] = []
        args: list[str | int] = ["s", len(items)]
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
        if items:
            self.outbox.settle(group, keys, args)
        return True

    async def flush(self) -> None:
        """Send the queued settlements now."""
        await self.outbox.flush()

    async def usage(
        self, group: str, subject: str, *, now: float, minute: int, spend_key: str | None
    ) -> SubjectUsage | None:
        await self.flush()

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
