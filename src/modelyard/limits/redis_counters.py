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
    <prefix>limits:{u42}:t7:held           the sum of the reservations' shares in flights

The batch script is given only the user's base key (``<prefix>limits:{u42}``) and builds
the others from it: every key it touches shares the hash tag, so it runs in one Cluster
slot, and each operation travels as one argument (packing a Redis argument costs the
client about a microsecond; an admission used to take 14 of them).

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
from modelyard.limits.redis_outbox import Outbox

__all__ = ["RedisCounters"]

# One group's queued operations, applied in order (see redis_outbox). KEYS[1]: the group's
# base key (``<prefix>limits:{u42}``); every key the script touches is built from it, so all
# share its hash tag (one Cluster slot). ARGV: one operation each, fields separated by spaces:
#   'a now hold tokens reservation window minute plans' (times in ms), then per plan
#       'subject rpm tpm budget spend-key' (-1: no such limit; '-': no spend counter).
#       Answers 'ok share...', 'init index' or '<limit> index used held flights'.
#   's items', then per item 'subject minute token-delta reservation spend-key units'
#       ('-': none of that).
# Returns the admissions' answers, in order, separated by ',' (one string is one reply for
# the client to parse, not three or more an admission). A subject's ``held`` key is the
# running sum of the shares in its ``flights`` set, so admitting costs the same however
# many are in flight.
_BATCH = """
local base = KEYS[1]

-- The share a reservation holds in the running sum. Members named '<id>:<units>' were
-- admitted by a version before the sum and are not in it: they count 0 (their requests
-- end within the hold; until then the budget can be overspent by at most their shares).
local function share_of(member) return tonumber(string.match(member, '/(%d+)$')) or 0 end

local function sweep(prefix, now)
  local flights = prefix .. 'flights'
  local expired = redis.call('ZRANGEBYSCORE', flights, '-inf', now)
  if #expired == 0 then return end
  local gone = 0
  for _, member in ipairs(expired) do gone = gone + share_of(member) end
  redis.call('ZREMRANGEBYSCORE', flights, '-inf', now)
  if gone > 0 and redis.call('EXISTS', prefix .. 'held') == 1 then
    redis.call('DECRBY', prefix .. 'held', gone)
  end
end

-- The shares held by the subject's requests in flight, and how many there are.
local function held_of(prefix, hold)
  local flights = redis.call('ZCARD', prefix .. 'flights')
  if flights == 0 then return 0, 0 end
  local held = redis.call('GET', prefix .. 'held')
  if held then return tonumber(held), flights end
  local sum = 0  -- the running sum expired with its last share: count what is left
  for _, member in ipairs(redis.call('ZRANGE', prefix .. 'flights', 0, -1)) do
    sum = sum + share_of(member)
  end
  redis.call('SET', prefix .. 'held', sum, 'PX', hold)
  return sum, flights
end

local function refused(limit, index, used, held, flights)
  return string.format('%s %d %d %d %d', limit, index, used, held, flights)
end

local function admit(f)
  local now, hold, est = tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  local rid, window, minute, n = f[5], f[6], f[7], tonumber(f[8])
  local prefixes, shares, flying = {}, {}, {}
  for i = 1, n do
    local p = 8 + (i - 1) * 5
    local prefix = base .. ':' .. f[p + 1] .. ':'
    local rpm, tpm, budget = tonumber(f[p + 2]), tonumber(f[p + 3]), tonumber(f[p + 4])
    prefixes[i], shares[i], flying[i] = prefix, 0, 0
    if rpm >= 0 then
      local requests = tonumber(redis.call('GET', prefix .. 'rpm:' .. minute) or '0')
      if requests + 1 > rpm then return refused('requests_per_minute', i, requests, 0, 0) end
    end
    if tpm >= 0 then
      local tokens = tonumber(redis.call('GET', prefix .. 'tpm:' .. minute) or '0')
      if tokens + est > tpm then return refused('tokens_per_minute', i, tokens, 0, 0) end
    end
    sweep(prefix, now)
    if budget >= 0 then
      local spend = redis.call('HMGET', prefix .. 'spend:' .. f[p + 5], 'spent', 'count')
      if not spend[1] then return 'init ' .. i end
      local spent, count = tonumber(spend[1]), tonumber(spend[2])
      local held, flights = held_of(prefix, hold)
      if spent + held >= budget then return refused('budget', i, spent, held, flights) end
      if count > 0 then shares[i] = math.floor(spent / count) end
      flying[i] = flights
    end
  end
  for i = 1, n do
    local prefix, share = prefixes[i], shares[i]
    local rpm, tpm = prefix .. 'rpm:' .. minute, prefix .. 'tpm:' .. minute
    if redis.call('INCR', rpm) == 1 then redis.call('PEXPIRE', rpm, window) end
    if redis.call('INCRBY', tpm, est) == est then redis.call('PEXPIRE', tpm, window) end
    redis.call('ZADD', prefix .. 'flights', now + hold, rid .. '/' .. string.format('%d', share))
    redis.call('PEXPIRE', prefix .. 'flights', hold)
    if share > 0 then
      if flying[i] == 0 then
        redis.call('SET', prefix .. 'held', share, 'PX', hold)
      else
        redis.call('INCRBY', prefix .. 'held', share)
        redis.call('PEXPIRE', prefix .. 'held', hold)
      end
    end
  end
  local answer = 'ok'
  for i = 1, n do answer = answer .. string.format(' %d', shares[i]) end
  return answer
end

local function settle(f)
  for i = 1, tonumber(f[2]) do
    local p = 2 + (i - 1) * 6
    local prefix = base .. ':' .. f[p + 1] .. ':'
    local minute, delta, member, spend_key, units = f[p + 2], f[p + 3], f[p + 4], f[p + 5], f[p + 6]
    if delta ~= '0' and minute ~= '-' then
      local tpm = prefix .. 'tpm:' .. minute
      if redis.call('EXISTS', tpm) == 1 then redis.call('INCRBY', tpm, delta) end
    end
    if member ~= '-' and redis.call('ZREM', prefix .. 'flights', member) == 1 then
      local share = share_of(member)
      if share > 0 and redis.call('EXISTS', prefix .. 'held') == 1 then
        redis.call('DECRBY', prefix .. 'held', share)
      end
    end
    if spend_key ~= '-' then
      local spend = prefix .. 'spend:' .. spend_key
      if redis.call('EXISTS', spend) == 1 then
        redis.call('HINCRBY', spend, 'spent', units)
        if tonumber(units) > 0 then redis.call('HINCRBY', spend, 'count', 1) end
      end
    end
  end
end

local answers = {}
for _, operation in ipairs(ARGV) do
  local f = {}
  for field in string.gmatch(operation, '%S+') do f[#f + 1] = field end
  if f[1] == 'a' then answers[#answers + 1] = admit(f) else settle(f) end
end
return table.concat(answers, ',')
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


def _verdict(answer: bytes) -> Verdict:
    """The admission script's answer as a verdict."""
    outcome, *fields = answer.split()
    if outcome == b"ok":
        return Granted(tuple(int(share) for share in fields))
    index = int(fields[0]) - 1
    if outcome == b"init":
        return NeedsSpend(index)
    limit: LimitName
    if outcome == b"requests_per_minute":
        limit = "requests_per_minute"
    elif outcome == b"tokens_per_minute":
        limit = "tokens_per_minute"
    else:
        limit = "budget"
    used, held, flights = (int(value) for value in fields[1:4])
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

    def base(self, group: str) -> str:
        """The key every key of ``group`` starts with (its hash tag: the user)."""
        return f"{self.prefix}limits:{{{group}}}"

    def key(self, group: str, subject: str, *parts: str | int) -> str:
        """The Redis key of one of ``subject``'s counters."""
        return ":".join([self.base(group), subject, *map(str, parts)])

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
        fields = [
            "a",
            str(math.floor(now * 1000)),
            str(_ms(hold_seconds)),
            str(estimated_tokens),
            reservation_id,
            str(WINDOW_SECONDS * 1000),
            str(minute),
            str(len(plans)),
        ]
        for plan in plans:
            budget = plan.budget if plan.spend_key is not None else None
            fields.append(plan.subject)
            for limit in (plan.requests_per_minute, plan.tokens_per_minute, budget):
                fields.append("-1" if limit is None else str(limit))
            fields.append(plan.spend_key or _UNUSED)
        answer = await self.outbox.admit(self.base(group), " ".join(fields))
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
        if not items:
            return True
        fields = ["s", str(len(items))]
        for item in items:
            counted = item.minute is not None
            fields += [
                item.subject,
                str(item.minute) if counted else _UNUSED,
                str(item.token_delta) if counted else "0",
                item.reservation or _UNUSED,
                item.spend_key or _UNUSED,
                str(item.spend_units),
            ]
        self.outbox.settle(self.base(group), " ".join(fields))
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
