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

Admitting a request of a subject with a budget costs time in proportion to that subject's
requests in flight (their reservations are summed).

Counters live in memory, or in Redis when the enforcer is given a client (all processes
with the same Redis and prefix enforce one limit together). While Redis is unreachable
each process falls back to its own in-memory counters.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
        #: (user id, token id) → their limits, user first; concurrent misses share a load.
        self._cache: TTLCache[tuple[int, int | None], list[SubjectLimits]] = TTLCache(
            ttl=cache_seconds, max_size=100_000
        )

    # -- limits rows ----------------------------------------------------------------------

    def invalidate(self, kind: SubjectKind, subject_id: int) -> None:
        """Forget the cached rows of a subject (call after changing it)."""
        place = 0 if kind == "user" else 1
        self._cache.discard_where(lambda key, _limits: key[place] == subject_id)

    async def limits_of(self, user_id: int, api_token_id: int | None) -> list[SubjectLimits]:
        """The limits of a user and a token (user first), from the cache when fresh."""

        async def load() -> list[SubjectLimits]:
            async with self.database.sessions() as session:
                rows = await load_limits(session, user_id=user_id, api_token_id=api_token_id)
            found = [SubjectLimits.of(row) for row in rows]
            return sorted(found, key=lambda limits: limits.kind != "user")

        loaded = await self._cache.get_or_load((user_id, api_token_id), load)
        return loaded if loaded is not None else []

    async def has_budget(self, user_id: int, api_token_id: int | None) -> bool:
        """Whether the user's or the token's limits include a USD budget."""
        subjects = await self.limits_of(user_id, api_token_id)
        return any(limits.budget_usd is not None for limits in subjects)

    # -- admit and settle -----------------------------------------------------------------

    def _plan(self, limits: SubjectLimits, now: float) -> Plan:
        budget = limits.budget_units
        if budget is None:
            return Plan(limits.key, limits.requests_per_minute, limits.tokens_per_minute, None)
        start, end = period_bounds(limits.period, _utc(now))
        return Plan(
            limits.key,
            limits.requests_per_minute,
            limits.tokens_per_minute,
            budget,
            spend_key=f"{limits.period}:{int(start.timestamp())}:{limits.version}",
            spend_expires_at=end.timestamp() + SPEND_GRACE_SECONDS,
        )

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
        subjects = await self.limits_of(user.id, api_token_id)
        if not subjects:
            return Admission(user.id, api_token_id, 0)
        if callable(estimated_tokens):
            counted = any(limits.tokens_per_minute is not None for limits in subjects)
            estimated_tokens = estimated_tokens() if counted else 0
        admission = Admission(user.id, api_token_id, estimated_tokens)
        now = self.clock()
        minute = minute_of(now)
        plans = [self._plan(limits, now) for limits in subjects]
        group = f"u{user.id}"
        reservation_id = uuid.uuid4().hex[:16]
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
                done = await self._initialise_spend(
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
        subjects = await self.limits_of(admission.user_id, admission.api_token_id)
        if not subjects and not admission.reservations:
            return
        now = self.clock()
        items = {
            subject: Settlement(
                subject,
                minute=admission.minute,
                token_delta=tokens - admission.estimated_tokens,
                reservation=member,
            )
            for subject, member in admission.reservations.items()
        }
        units = to_units(cost_usd)
        for limits in subjects:
            plan = self._plan(limits, now)
            if plan.spend_key is not None:
                item = items.get(plan.subject, Settlement(plan.subject))
                items[plan.subject] = replace(item, spend_key=plan.spend_key, spend_units=units)
        group = f"u{admission.user_id}"
        if admission.local or self.shared is None:
            await self.local.settle(group, list(items.values()))
        elif await self.shared.settle(group, list(items.values())) is None:
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
        plan = self._plan(limits, now)
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
