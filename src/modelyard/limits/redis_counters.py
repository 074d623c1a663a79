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

**Allowances.** Waiting for Redis puts a round trip, and the Redis server's turn on a busy
machine, into every request's latency, and each admission used to be a script call of its
own. So each answer that grants a request also gives, per limit, the room left after it,
and the process keeps an *allowance* for that plan: an eighth of each room, for at most
:data:`ALLOWANCE_REQUESTS` admissions and :data:`ALLOWANCE_SECONDS`. While every plan of a
request has an allowance covering it, the process admits it at once (with the share of the
last answer) and queues its count like a settlement: Redis counts it, without checks, with
the process's next admission or within the outbox's delay. Otherwise the admission waits
for Redis as before, and its answer renews the allowances. Near a limit (when an eighth of
the room is less than one request's need) every admission is thus checked in Redis.

The price: what a process admits from an allowance is not checked against what other
processes admitted meanwhile. So a limit can be passed by the allowances granted in the
last :data:`ALLOWANCE_SECONDS`: per other process at most an eighth of the room its grant
saw and :data:`ALLOWANCE_REQUESTS` requests; a budget also by what requests cost beyond
their share, as without allowances (their cost is known at settlement).

When Redis fails, an operation answers None (through :class:`RedisGuard`, which logs and
backs off); the enforcer then uses its in-process counters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
from modelyard.ttl_cache import TTLCache

__all__ = ["ALLOWANCE_REQUESTS", "ALLOWANCE_SECONDS", "RedisCounters"]

#: An allowance is this fraction of each room an answer leaves (see the module docstring).
ALLOWANCE_FRACTION = 8
#: Admissions one allowance makes at most, and how long it lasts (seconds of ``now``).
ALLOWANCE_REQUESTS = 64
ALLOWANCE_SECONDS = 0.1

# One group's queued operations, applied in order (see redis_outbox). KEYS[1]: the group's
# base key (``<prefix>limits:{u42}``); every key the script touches is built from it, so all
# share its hash tag (one Cluster slot). ARGV: one operation each, fields separated by spaces:
#   'a now hold tokens reservation window minute plans' (times in ms), then per plan
#       'subject rpm tpm budget spend-key' (-1: no such limit; '-': no spend counter).
#       Answers 'ok', then per plan 'share requests tokens units': its share and the room
#       left on each limit after this admission ('-': no such limit); or 'init index', or
#       '<limit> index used held flights'.
#   'f now hold tokens reservation window minute plans', then per plan 'subject share':
#       an admission the process made from its allowance (see :class:`RedisCounters`):
#       counted as an admission is, without checks, and not answered.
#   's items', then per item 'subject minute token-delta reservation spend-key units'
#       ('-': none of that).
# Returns the admissions' answers, in order, separated by ',' (one string is one reply for
# the client to parse, not three or more an admission).
#
# The script reads each key it needs once, applies the operations to those values in
# order, and writes each changed key back once at the end: a batch of n operations on one
# subject costs about 15 Redis calls, not 10 an operation. The answers are those of the
# operations applied one by one, except that expired reservations are swept once, at the
# latest admission's time. A subject's ``held`` key is the running sum of the shares in its
# ``flights`` set, so admitting costs the same however many are in flight.
_BATCH = """
local base = KEYS[1]
local CHUNK = 500  -- arguments per call at most (unpack's limit is in the thousands)

-- The share a reservation holds in the running sum. Members named '<id>:<units>' were
-- admitted by a version before the sum and are not in it: they count 0 (their requests
-- end within the hold; until then the budget can be overspent by at most their shares).
local function share_of(member) return tonumber(string.match(member, '/(%d+)$')) or 0 end

-- Numbers go to Redis as integers (Lua would write 1e+14 for a large budget).
local function int(x) return string.format('%d', x) end

local function chunked(command, key, items)
  for first = 1, #items, CHUNK do
    redis.call(command, key, unpack(items, first, math.min(first + CHUNK - 1, #items)))
  end
end

local ops, now = {}, nil
for i, operation in ipairs(ARGV) do
  local f = {}
  for field in string.gmatch(operation, '%S+') do f[#f + 1] = field end
  ops[i] = f
  if f[1] ~= 's' and (now == nil or tonumber(f[2]) > now) then now = tonumber(f[2]) end
end

-- Window counters (requests, tokens): key -> {base: value in Redis or false, delta, window:
-- set when an admission counts in it}.
local counters, counter_keys = {}, {}
local function counter(key)
  local c = counters[key]
  if c == nil then
    local value = redis.call('GET', key)
    c = {base = value and tonumber(value) or false, delta = 0}
    counters[key], counter_keys[#counter_keys + 1] = c, key
  end
  return c
end
local function count_of(c) return (c.base or 0) + c.delta end

-- Spend counters: key -> {exists, spent, count, and what this batch adds to them}.
local spends, spend_keys = {}, {}
local function spend(key)
  local s = spends[key]
  if s == nil then
    local found = redis.call('HMGET', key, 'spent', 'count')
    s = {exists = found[1] ~= false, spent = tonumber(found[1] or '0'),
         count = tonumber(found[2] or '0'), dspent = 0, dcount = 0}
    spends[key], spend_keys[#spend_keys + 1] = s, key
  end
  return s
end

-- Subjects' requests in flight: prefix -> {count, loaded (the count in Redis), held (the
-- running sum, read when first needed), members added and removed by this batch}. Expired
-- ones are swept on first use.
local subjects, subject_prefixes = {}, {}
local function subject(prefix)
  local s = subjects[prefix]
  if s ~= nil then return s end
  local flights = prefix .. 'flights'
  if now ~= nil then
    local expired = redis.call('ZRANGEBYSCORE', flights, '-inf', int(now))
    if #expired > 0 then
      local gone = 0
      for _, member in ipairs(expired) do gone = gone + share_of(member) end
      redis.call('ZREMRANGEBYSCORE', flights, '-inf', int(now))
      if gone > 0 and redis.call('EXISTS', prefix .. 'held') == 1 then
        redis.call('DECRBY', prefix .. 'held', int(gone))
      end
    end
  end
  local count = redis.call('ZCARD', flights)
  s = {count = count, loaded = count, added = {}, removed = {}, present = {}}
  subjects[prefix], subject_prefixes[#subject_prefixes + 1] = s, prefix
  return s
end

-- The shares held by the subject's requests in flight.
local function held_of(prefix, s)
  if s.held == nil then
    if s.loaded == 0 then
      s.held = 0
    else
      local held = redis.call('GET', prefix .. 'held')
      if held then
        s.held, s.stored = tonumber(held), tonumber(held)
      else  -- the running sum expired with its last share: count what is left
        local sum = 0
        for _, member in ipairs(redis.call('ZRANGE', prefix .. 'flights', 0, -1)) do
          sum = sum + share_of(member)
        end
        s.held, s.recounted = sum, true
      end
    end
  end
  return s.held
end

-- Which reservations the batch settles are still in flight (one call per subject).
local settled, settled_prefixes = {}, {}
for _, f in ipairs(ops) do
  if f[1] == 's' then
    for i = 1, tonumber(f[2]) do
      local p = 2 + (i - 1) * 6
      if f[p + 4] ~= '-' then
        local prefix = base .. ':' .. f[p + 1] .. ':'
        if settled[prefix] == nil then
          settled[prefix], settled_prefixes[#settled_prefixes + 1] = {}, prefix
        end
        table.insert(settled[prefix], f[p + 4])
      end
    end
  end
end
for _, prefix in ipairs(settled_prefixes) do
  local s, members = subject(prefix), settled[prefix]
  for first = 1, #members, CHUNK do
    local last = math.min(first + CHUNK - 1, #members)
    local scores = redis.call('ZMSCORE', prefix .. 'flights', unpack(members, first, last))
    for i = first, last do
      if scores[i - first + 1] then s.present[members[i]] = true end
    end
  end
end

local function refused(limit, index, used, held, flights)
  return table.concat({limit, int(index), int(used), int(held), int(flights)}, ' ')
end

-- Count an admitted request for one subject (written back at the end).
local function count(prefix, now, hold, est, rid, window, minute, share)
  local s = subject(prefix)
  local requests = counter(prefix .. 'rpm:' .. minute)
  local tokens = counter(prefix .. 'tpm:' .. minute)
  requests.delta, requests.window = requests.delta + 1, window
  tokens.delta, tokens.window = tokens.delta + est, window
  table.insert(s.added, int(now + hold))
  table.insert(s.added, rid .. '/' .. int(share))
  s.count, s.hold = s.count + 1, hold
  if share > 0 then s.held, s.shared = held_of(prefix, s) + share, true end
end

local function room(limit, used)
  if limit < 0 then return '-' end
  return int(limit - used)
end

local function admit(f)
  local now, hold, est = tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  local rid, window, minute, n = f[5], tonumber(f[6]), f[7], tonumber(f[8])
  local prefixes, shares = {}, {}
  for i = 1, n do
    local p = 8 + (i - 1) * 5
    local prefix = base .. ':' .. f[p + 1] .. ':'
    local rpm, tpm, budget = tonumber(f[p + 2]), tonumber(f[p + 3]), tonumber(f[p + 4])
    prefixes[i], shares[i] = prefix, 0
    local s = subject(prefix)
    if rpm >= 0 then
      local requests = count_of(counter(prefix .. 'rpm:' .. minute))
      if requests + 1 > rpm then return refused('requests_per_minute', i, requests, 0, 0) end
    end
    if tpm >= 0 then
      local tokens = count_of(counter(prefix .. 'tpm:' .. minute))
      if tokens + est > tpm then return refused('tokens_per_minute', i, tokens, 0, 0) end
    end
    if budget >= 0 then
      local counted = spend(prefix .. 'spend:' .. f[p + 5])
      if not counted.exists then return 'init ' .. i end
      local held = held_of(prefix, s)
      if counted.spent + held >= budget then
        return refused('budget', i, counted.spent, held, s.count)
      end
      if counted.count > 0 then shares[i] = math.floor(counted.spent / counted.count) end
    end
  end
  local answer = {'ok'}
  for i = 1, n do
    local p = 8 + (i - 1) * 5
    local prefix, share = prefixes[i], shares[i]
    count(prefix, now, hold, est, rid, window, minute, share)
    local rpm, tpm, budget = tonumber(f[p + 2]), tonumber(f[p + 3]), tonumber(f[p + 4])
    answer[#answer + 1] = int(share)
    answer[#answer + 1] = room(rpm, count_of(counter(prefix .. 'rpm:' .. minute)))
    answer[#answer + 1] = room(tpm, count_of(counter(prefix .. 'tpm:' .. minute)))
    local spent = budget >= 0 and spend(prefix .. 'spend:' .. f[p + 5]).spent or 0
    answer[#answer + 1] = room(budget, spent + (subjects[prefix].held or 0))
  end
  return table.concat(answer, ' ')
end

local function force(f)
  local now, hold, est = tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  local rid, window, minute, n = f[5], tonumber(f[6]), f[7], tonumber(f[8])
  for i = 1, n do
    local p = 8 + (i - 1) * 2
    count(base .. ':' .. f[p + 1] .. ':', now, hold, est, rid, window, minute, tonumber(f[p + 2]))
  end
end

local function settle(f)
  for i = 1, tonumber(f[2]) do
    local p = 2 + (i - 1) * 6
    local prefix = base .. ':' .. f[p + 1] .. ':'
    local minute, delta, member, spend_key, units = f[p + 2], f[p + 3], f[p + 4], f[p + 5], f[p + 6]
    if delta ~= '0' and minute ~= '-' then
      local c = counter(prefix .. 'tpm:' .. minute)
      if c.base or c.window then c.delta = c.delta + tonumber(delta) end
    end
    if member ~= '-' then
      local s = subject(prefix)
      if s.present[member] then
        s.present[member] = nil
        table.insert(s.removed, member)
        s.count = s.count - 1
        local share = share_of(member)
        if share > 0 then s.held = held_of(prefix, s) - share end
      end
    end
    if spend_key ~= '-' then
      local counted = spend(prefix .. 'spend:' .. spend_key)
      if counted.exists then
        units = tonumber(units)
        counted.spent, counted.dspent = counted.spent + units, counted.dspent + units
        if units > 0 then counted.count, counted.dcount = counted.count + 1, counted.dcount + 1 end
      end
    end
  end
end

local answers = {}
for _, f in ipairs(ops) do
  if f[1] == 'a' then
    answers[#answers + 1] = admit(f)
  elseif f[1] == 'f' then
    force(f)
  else
    settle(f)
  end
end

for _, key in ipairs(counter_keys) do
  local c = counters[key]
  local new = c.window ~= nil and not c.base
  if c.delta ~= 0 or new then
    redis.call('INCRBY', key, int(c.delta))
    if new then redis.call('PEXPIRE', key, int(c.window)) end
  end
end
for _, key in ipairs(spend_keys) do
  local counted = spends[key]
  if counted.dspent ~= 0 then redis.call('HINCRBY', key, 'spent', int(counted.dspent)) end
  if counted.dcount ~= 0 then redis.call('HINCRBY', key, 'count', int(counted.dcount)) end
end
for _, prefix in ipairs(subject_prefixes) do
  local s = subjects[prefix]
  local flights = prefix .. 'flights'
  if #s.removed > 0 then chunked('ZREM', flights, s.removed) end
  if #s.added > 0 then
    chunked('ZADD', flights, s.added)
    redis.call('PEXPIRE', flights, int(s.hold))
  end
  if s.held ~= nil then
    if s.hold ~= nil and (s.shared or s.recounted) then
      redis.call('SET', prefix .. 'held', int(s.held), 'PX', int(s.hold))
    elseif s.stored ~= nil and s.held ~= s.stored then
      redis.call('SET', prefix .. 'held', int(s.held), 'KEEPTTL')
    end
  end
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


@dataclass(slots=True)
class _Allowance:
    """What this process may still admit for one plan without asking Redis (None: that
    limit is not set)."""

    plan: Plan
    minute: int
    until: float
    share: int
    admissions: int
    requests: int | None
    tokens: int | None
    units: int | None

    @classmethod
    def of(cls, plan: Plan, fields: Sequence[bytes], minute: int, now: float) -> _Allowance | None:
        """From one plan's ``share requests tokens units`` of an answer; None: no room."""
        share = int(fields[0])
        rooms = [None if room == b"-" else int(room) // ALLOWANCE_FRACTION for room in fields[1:]]
        requests, tokens, units = rooms
        if any(room is not None and room <= 0 for room in rooms) or (
            units is not None and units < share
        ):
            return None
        admissions = min(ALLOWANCE_REQUESTS, requests or ALLOWANCE_REQUESTS)
        until = now + ALLOWANCE_SECONDS
        return cls(plan, minute, until, share, admissions, requests, tokens, units)

    def covers(self, plan: Plan, minute: int, now: float, tokens: int) -> bool:
        return (
            self.admissions > 0
            and (self.plan is plan or self.plan == plan)
            and now < self.until
            and (minute == self.minute or (self.requests is None and self.tokens is None))
            and (self.tokens is None or self.tokens >= tokens)
            and (self.units is None or self.units >= self.share)
        )

    def spent(self, units: int) -> None:
        """A request of this subject cost ``units``. Its share may have been taken from this
        allowance already: counting both errs on the side of the limit."""
        if self.units is not None:
            self.units -= units

    def take(self, tokens: int) -> None:
        self.admissions -= 1
        if self.tokens is not None:
            self.tokens -= tokens
        if self.units is not None:
            self.units -= self.share


def _verdict(answer: bytes) -> Verdict:
    """The admission script's answer as a verdict."""
    outcome, *fields = answer.split()
    if outcome == b"ok":
        return Granted(tuple(int(share) for share in fields[::4]))
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

    def __init__(
        self,
        redis: Redis,
        prefix: str = "",
        *,
        guard: RedisGuard | None = None,
        allowances: bool = True,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.guard = guard or RedisGuard("limits")
        self._init_spend = redis.register_script(_INIT_SPEND)
        #: Admissions and settlements, sent in batches (see :mod:`.redis_outbox`).
        self.outbox = Outbox(redis, redis.register_script(_BATCH), self.guard)
        #: Whether to admit from allowances (see the module docstring).
        self.allowances = allowances
        #: (group, subject) → what this process may admit for its plan without Redis.
        self._allowances: TTLCache[tuple[str, str], _Allowance] = TTLCache(
            ttl=WINDOW_SECONDS, max_size=100_000
        )

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
        base = self.base(group)
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
        if self.allowances:
            allowances = [self._allowances.get((group, plan.subject)) for plan in plans]
            if all(
                allowance is not None and allowance.covers(plan, minute, now, estimated_tokens)
                for plan, allowance in zip(plans, allowances, strict=True)
            ):
                return self._admit_allowed(base, fields, plans, allowances, estimated_tokens)
        for plan in plans:
            budget = plan.budget if plan.spend_key is not None else None
            fields.append(plan.subject)
            for limit in (plan.requests_per_minute, plan.tokens_per_minute, budget):
                fields.append("-1" if limit is None else str(limit))
            fields.append(plan.spend_key or _UNUSED)
        answer = await self.outbox.admit(base, " ".join(fields))
        if answer is None:
            return None
        verdict = _verdict(answer)
        rooms = answer.split()[1:] if isinstance(verdict, Granted) else None
        for index, plan in enumerate(plans):
            allowance = None
            if rooms is not None:
                allowance = _Allowance.of(plan, rooms[index * 4 : index * 4 + 4], minute, now)
            if allowance is None:
                self._allowances.discard((group, plan.subject))
            else:
                self._allowances.put((group, plan.subject), allowance)
        return verdict

    def _admit_allowed(
        self,
        base: str,
        fields: list[str],
        plans: Sequence[Plan],
        allowances: Sequence[_Allowance | None],
        estimated_tokens: int,
    ) -> Granted:
        """Admit from the plans' allowances; Redis counts it in the next batch.

        ``fields`` is the admission's header; the count sends it with each plan's share."""
        fields[0] = "f"
        shares = []
        for plan, allowance in zip(plans, allowances, strict=True):
            assert allowance is not None
            allowance.take(estimated_tokens)
            shares.append(allowance.share)
            fields += [plan.subject, str(allowance.share)]
        self.outbox.defer(base, " ".join(fields))
        return Granted(tuple(shares))

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
            if item.spend_units > 0:
                allowance = self._allowances.get((group, item.subject))
                if allowance is not None:
                    allowance.spent(item.spend_units)
            counted = item.minute is not None
            fields += [
                item.subject,
                str(item.minute) if counted else _UNUSED,
                str(item.token_delta) if counted else "0",
                item.reservation or _UNUSED,
                item.spend_key or _UNUSED,
                str(item.spend_units),
            ]
        self.outbox.defer(self.base(group), " ".join(fields))
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
