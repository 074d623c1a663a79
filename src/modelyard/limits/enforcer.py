"""Budgets and rate limits per user and per API token, checked before the upstream call.

A request is checked against its user's ``usage_limits`` row and, when it came with an API
token, that token's row; each is independent and both must admit it:

- requests per minute and tokens per minute: refused with a 429 and ``Retry-After`` (the
  seconds to the end of the current UTC minute: the windows are fixed, see
  :mod:`~modelyard.limits.counters`);
- a spend limit in USD per calendar ``day``, ``week`` (from Monday) or ``month`` in UTC:
  refused with a 402 once the period's spend plus the reservations of the requests in
  flight reach the budget.

:meth:`LimitEnforcer.admit` reserves (one request, the estimated tokens, a share of the
budget — the subject's mean cost per request this period) and :meth:`LimitEnforcer.settle`
replaces the reservation with what the request really used. So concurrent requests
overspend a budget by at most what the requests already in flight cost beyond their
reservations.

The budget's spend is read from ``usage_records`` once per period (and again when the
limits row changes) and kept in the counters afterwards; records still queued in the usage
recorder at that moment (at most ``usage_flush_seconds`` of them) are missed.

Limits rows are cached for ``cache_seconds`` (5 by default), absent rows too: a change made
through this process is seen at once (:meth:`LimitEnforcer.invalidate`), one made through
another process within that time. A request of a user and token without limits costs a
dictionary look-up — no database query and no Redis call.

Admitting costs the same however many requests are in flight, in memory and in Redis
(both keep a running sum of the reservations). Concurrent requests that find a period's
spend counter missing share one ``usage_records`` read.

Counters live in memory, or in Redis when the enforcer is given a client (all processes
with the same Redis and prefix enforce one limit together). While Redis is unreachable
each process falls back to its own in-memory counters.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from redis.asyncio import Redis

from modelyard.db.engine import Database
from modelyard.db.models import User
from modelyard.errors import ModelyardError, PaymentRequiredError, RateLimitError
from modelyard.limits.counters import (
    Counters,
    Granted,
    MemoryCounters,
    NeedsSpend,
    Plan,
    Refused,
    Settlement,
    Verdict,
    reservation_member,
)
from modelyard.limits.periods import minute_of, minute_resets_at, period_bounds
from modelyard.limits.records import load_limits, spend_since
from modelyard.limits.redis_counters import RedisCounters
from modelyard.limits.rules import SubjectKind, SubjectLimits, format_usd, from_units, to_units
from modelyard.ttl_cache import TTLCache
from modelyard.unique_ids import unique_hex

__all__ = ["Admission", "LimitEnforcer", "LimitUsage"]

logger = logging.getLogger("modelyard.limits")

#: Spend counters are kept this long after their period ends.
SPEND_GRACE_SECONDS = 86_400


@dataclass
class Admission:
    """A request let through, with what it reserved against the limits."""

    user_id: int
    api_token_id: int | None
    estimated_tokens: int
    #: Subject (``u<id>``, ``t<id>``) → its reservation; empty when no limit applied.
    reservations: dict[str, str] = field(default_factory=dict)
    #: The rate-limit window the request was counted in.
    minute: int | None = None
    #: Counted in this process's counters (Redis was unavailable).
    local: bool = False
    settled: bool = False


@dataclass(frozen=True)
class LimitUsage:
    """A subject's consumption now, against its limits."""

    requests_this_minute: int
    tokens_this_minute: int
    minute_resets_at: datetime
    in_flight: int
    spent_usd: Decimal
    period_started_at: datetime
    period_resets_at: datetime


@dataclass
class _Subjects:
    """A user's and a token's limits (user first) as cached, with their plans."""

    limits: list[SubjectLimits]
    counts_tokens: bool
    has_budget: bool
    #: The plans for the periods holding ``plans_from`` ≤ now < ``plans_until``.
    plans: list[Plan] = field(default_factory=list)
    plans_from: float = math.inf
    plans_until: float = -math.inf

    @classmethod
    def of(cls, limits: list[SubjectLimits]) -> _Subjects:
        return cls(
            limits,
            counts_tokens=any(one.tokens_per_minute is not None for one in limits),
            has_budget=any(one.budget_usd is not None for one in limits),
        )


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class LimitEnforcer:
    """Admits requests against the limits and settles them; see the module docstring."""

    def __init__(
        self,
        database: Database,
        *,
        redis: Redis | None = None,
        prefix: str = "",
        cache_seconds: float = 5.0,
        hold_seconds: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        #: Seconds a request in flight holds its reservation at most (if never settled).
        self.hold_seconds = hold_seconds
        #: Unix time in seconds (injectable for tests).
        self.clock = clock
        self.local = MemoryCounters()
        self.shared = RedisCounters(redis, prefix) if redis is not None else None
        #: (user id, token id) → their limits; concurrent misses share a load.
        self._cache: TTLCache[tuple[int, int | None], _Subjects] = TTLCache(
            ttl=cache_seconds, max_size=100_000
        )
        #: (memory store?, group, subject, spend key) → the spend counter's initialisation.
        self._spend_loads: dict[tuple[bool, str, str, str], asyncio.Future[bool | None]] = {}

    # -- limits rows ----------------------------------------------------------------------

    def invalidate(self, kind: SubjectKind, subject_id: int) -> None:
        """Forget the cached rows of a subject (call after changing it)."""
        place = 0 if kind == "user" else 1
        self._cache.discard_where(lambda key, _limits: key[place] == subject_id)

    async def _subjects_of(self, user_id: int, api_token_id: int | None) -> _Subjects:
        cached = self._cache.get((user_id, api_token_id))
        if cached is not None:
            return cached

        async def load() -> _Subjects:
            async with self.database.sessions() as session:
                rows = await load_limits(session, user_id=user_id, api_token_id=api_token_id)
            found = [SubjectLimits.of(row) for row in rows]
            return _Subjects.of(sorted(found, key=lambda limits: limits.kind != "user"))

        loaded = await self._cache.get_or_load((user_id, api_token_id), load)
        return loaded if loaded is not None else _Subjects([], False, False)

    async def limits_of(self, user_id: int, api_token_id: int | None) -> list[SubjectLimits]:
        """The limits of a user and a token (user first), from the cache when fresh."""
        return (await self._subjects_of(user_id, api_token_id)).limits

    async def has_budget(self, user_id: int, api_token_id: int | None) -> bool:
        """Whether the user's or the token's limits include a USD budget."""
        return (await self._subjects_of(user_id, api_token_id)).has_budget

    # -- admit and settle -----------------------------------------------------------------

    @staticmethod
    def _plan(limits: SubjectLimits, now: float) -> tuple[Plan, float, float]:
        """The plan of ``limits`` at ``now`` and the bounds of the period it holds for."""
        budget = limits.budget_units
        if budget is None:
            plan = Plan(limits.key, limits.requests_per_minute, limits.tokens_per_minute, None)
            return plan, -math.inf, math.inf
        start, end = period_bounds(limits.period, _utc(now))
        plan = Plan(
            limits.key,
            limits.requests_per_minute,
            limits.tokens_per_minute,
            budget,
            spend_key=f"{limits.period}:{int(start.timestamp())}:{limits.version}",
            spend_expires_at=end.timestamp() + SPEND_GRACE_SECONDS,
        )
        return plan, start.timestamp(), end.timestamp()

    def _plans(self, subjects: _Subjects, now: float) -> list[Plan]:
        """The subjects' plans at ``now``: built again only when a budget period ends."""
        if not subjects.plans_from <= now < subjects.plans_until:
            planned = [self._plan(limits, now) for limits in subjects.limits]
            subjects.plans = [plan for plan, _start, _end in planned]
            subjects.plans_from = max((start for _plan, start, _end in planned), default=-math.inf)
            subjects.plans_until = min((end for _plan, _start, end in planned), default=math.inf)
        return subjects.plans

    async def _spend_initialised(
        self, store: Counters, group: str, limits: SubjectLimits, plan: Plan, now: float
    ) -> bool | None:
        """Initialise the period's spend counter; concurrent callers share one read."""
        assert plan.spend_key is not None
        key = (store is self.local, group, plan.subject, plan.spend_key)
        load = self._spend_loads.get(key)
        if load is None:
            load = asyncio.ensure_future(self._initialise_spend(store, group, limits, plan, now))
            self._spend_loads[key] = load
            load.add_done_callback(lambda _done: self._spend_loads.pop(key, None))
        return await asyncio.shield(load)

    async def _initialise_spend(
        self, store: Counters, group: str, limits: SubjectLimits, plan: Plan, now: float
    ) -> bool | None:
        """Create the period's spend counter from ``usage_records``."""
        start, _end = period_bounds(limits.period, _utc(now))
        async with self.database.sessions() as session:
            spent, count = await spend_since(session, limits.kind, limits.id, start)
        assert plan.spend_key is not None
        return await store.init_spend(
            group,
            plan.subject,
            plan.spend_key,
            spent=to_units(spent),
            count=count,
            ttl=plan.spend_expires_at - now,
        )

    async def admit(
        self,
        *,
        user: User,
        api_token_id: int | None,
        estimated_tokens: int | Callable[[], int],
    ) -> Admission:
        """Let the request through, or raise a 429 / 402 naming the limit and its reset.

        ``estimated_tokens`` may be a function: it is called only when a limit counts
        tokens (counting a long prompt's tokens costs more than the rest of the check)."""
        found = await self._subjects_of(user.id, api_token_id)
        subjects = found.limits
        if not subjects:
            return Admission(user.id, api_token_id, 0)
        if callable(estimated_tokens):
            estimated_tokens = estimated_tokens() if found.counts_tokens else 0
        admission = Admission(user.id, api_token_id, estimated_tokens)
        now = self.clock()
        minute = minute_of(now)
        plans = self._plans(found, now)
        group = f"u{user.id}"
        reservation_id = unique_hex()
        local = self.shared is None
        verdict: Verdict | None = None
        # At most: Redis fails once, then each subject's spend is initialised once.
        for _attempt in range(2 + 2 * len(plans)):
            store: Counters = self.local if local or self.shared is None else self.shared
            verdict = await store.admit(
                group,
                plans,
                now=now,
                minute=minute,
                estimated_tokens=estimated_tokens,
                reservation_id=reservation_id,
                hold_seconds=self.hold_seconds,
            )
            if isinstance(verdict, NeedsSpend):
                index = verdict.index
                done = await self._spend_initialised(
                    store, group, subjects[index], plans[index], now
                )
                verdict = None
                local = local or done is None
            elif verdict is None:
                local = True
            else:
                break
        if isinstance(verdict, Refused):
            raise self._refusal(subjects[verdict.index], verdict, now, estimated_tokens)
        if not isinstance(verdict, Granted):  # pragma: no cover - a store misbehaving
            logger.warning("Limits undecided for user %s; request admitted", user.id)
            return admission
        admission.minute = minute
        admission.local = local
        admission.reservations = {
            plan.subject: reservation_member(reservation_id, share)
            for plan, share in zip(plans, verdict.reserved, strict=True)
        }
        return admission

    async def settle(self, admission: Admission, *, tokens: int, cost_usd: Decimal) -> None:
        """Replace the reservation by what the request really used."""
        if admission.settled:
            return
        admission.settled = True
        found = await self._subjects_of(admission.user_id, admission.api_token_id)
        reservations = admission.reservations
        if not found.limits and not reservations:
            return
        plans = self._plans(found, self.clock())
        units = to_units(cost_usd) if cost_usd else 0
        delta = tokens - admission.estimated_tokens
        items: list[Settlement] = []
        matched = 0
        for plan in plans:
            member = reservations.get(plan.subject)
            if member is not None:
                matched += 1
                items.append(
                    Settlement(plan.subject, admission.minute, delta, member, plan.spend_key, units)
                )
            elif plan.spend_key is not None:
                items.append(Settlement(plan.subject, spend_key=plan.spend_key, spend_units=units))
        if matched < len(reservations):  # limits removed since the admission
            planned = {plan.subject for plan in plans}
            items += [
                Settlement(subject, admission.minute, delta, member)
                for subject, member in reservations.items()
                if subject not in planned
            ]
        group = f"u{admission.user_id}"
        if admission.local or self.shared is None:
            await self.local.settle(group, items)
        elif await self.shared.settle(group, items) is None:
            logger.warning("Limits of user %s not settled: Redis unavailable", admission.user_id)

    async def aclose(self) -> None:
        """Send the settlements still queued for Redis."""
        if self.shared is not None:
            await self.shared.flush()

    # -- messages -------------------------------------------------------------------------

    def _refusal(
        self, limits: SubjectLimits, refused: Refused, now: float, estimated_tokens: int
    ) -> ModelyardError:
        owner = limits.owner()
        if refused.limit == "budget":
            assert limits.budget_usd is not None
            _start, end = period_bounds(limits.period, _utc(now))
            flights = (
                f" and {refused.in_flight} request{'s' if refused.in_flight != 1 else ''} in "
                f"flight reserve {format_usd(from_units(refused.held))}"
                if refused.held
                else ""
            )
            return PaymentRequiredError(
                f"Budget exhausted: {owner} budget is {format_usd(limits.budget_usd)} per "
                f"{limits.period}; {format_usd(from_units(refused.used))} was spent this "
                f"{limits.period}{flights}. It resets at {_iso(end)} (start of the next "
                f"{limits.period}, UTC).",
                code="budget_exhausted",
            )
        resets = minute_resets_at(minute_of(now))
        wait = math.ceil(resets - now)
        when = f"It resets at {_iso(_utc(resets))} (in {wait} s)."
        if refused.limit == "requests_per_minute":
            message = (
                f"Rate limit reached: {owner} limit is {limits.requests_per_minute} requests "
                f"per minute and {refused.used} were made this minute. {when}"
            )
        else:
            tpm = limits.tokens_per_minute or 0
            alone = (
                " This request alone is larger than the limit: shorten it or lower max_tokens."
                if estimated_tokens > tpm
                else ""
            )
            message = (
                f"Rate limit reached: {owner} limit is {tpm} tokens per minute; "
                f"{refused.used} were used this minute and this request needs about "
                f"{estimated_tokens}.{alone} {when}"
            )
        return RateLimitError(message, retry_after=wait, code=f"{refused.limit}_exceeded")

    # -- consumption ----------------------------------------------------------------------

    async def usage(self, limits: SubjectLimits, *, user_id: int) -> LimitUsage:
        """What ``limits``' subject (of user ``user_id``) consumed: this minute, this period."""
        now = self.clock()
        minute = minute_of(now)
        start, end = period_bounds(limits.period, _utc(now))
        plan, _start, _end = self._plan(limits, now)
        group = f"u{user_id}"
        counted = None
        if self.shared is not None:
            counted = await self.shared.usage(
                group, plan.subject, now=now, minute=minute, spend_key=plan.spend_key
            )
        if counted is None:
            counted = await self.local.usage(
                group, plan.subject, now=now, minute=minute, spend_key=plan.spend_key
            )
        if counted.spent is not None:
            spent = from_units(counted.spent)
        else:
            async with self.database.sessions() as session:
                spent, _count = await spend_since(session, limits.kind, limits.id, start)
        return LimitUsage(
            requests_this_minute=counted.requests,
            tokens_this_minute=counted.tokens,
            minute_resets_at=_utc(minute_resets_at(minute)),
            in_flight=counted.in_flight,
            spent_usd=spent,
            period_started_at=start,
            period_resets_at=end,
        )
