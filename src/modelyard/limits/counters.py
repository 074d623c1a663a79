"""The counters behind the limits, in memory (one process) or in Redis (shared).

Per subject (``u<user id>`` or ``t<token id>``) they hold:

- requests and tokens per **fixed** one-minute window (the UTC minute): a request counts
  one request and its estimated tokens in the minute it is admitted; settling replaces the
  estimate by the real count *in that same minute*. A fixed window resets at the minute's
  end (the ``Retry-After`` is exact), at the price of allowing up to twice the rate across
  a minute boundary;
- the spend of the current budget period (integer units of 1e-8 USD) and the number of
  requests that cost something, under a key naming the period and the limits' version.
  The counter exists only once initialised from the ``usage_records`` table; spend settled
  while it does not exist is not counted (the table has it, and initialisation reads it);
- the requests in flight: one reservation each (a share of the budget: the subject's
  mean cost per request this period, 0 without history), dropped when settled or after
  ``hold_seconds`` (a request whose process died stops holding budget then).

:meth:`Counters.admit` checks every subject of a request and, only when all of them admit
it, counts it for all of them — atomically (one Lua script in Redis, no ``await`` in the
memory store). A budget is refused once ``spent + reservations in flight >= budget``.
A ``None`` answer means "the store is unavailable" (Redis down); the memory store never
gives one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from modelyard.ttl_cache import TTLCache

__all__ = [
    "WINDOW_SECONDS",
    "Counters",
    "Granted",
    "LimitName",
    "MemoryCounters",
    "NeedsSpend",
    "Plan",
    "Refused",
    "Settlement",
    "SubjectUsage",
    "Verdict",
]

#: How long a minute's counters are kept (the current and the previous minute).
WINDOW_SECONDS = 120

LimitName = Literal["requests_per_minute", "tokens_per_minute", "budget"]


@dataclass(frozen=True)
class Plan:
    """What to check and count for one subject of a request."""

    subject: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    #: Budget in units of 1e-8 USD, or None.
    budget: int | None
    #: The spend counter's name (period start and limits version); None without a budget.
    spend_key: str | None = None
    #: When the spend counter may be dropped (Unix seconds).
    spend_expires_at: float = 0.0


@dataclass(frozen=True)
class Granted:
    """Admitted: the budget units reserved for each plan, in order."""

    reserved: tuple[int, ...]


@dataclass(frozen=True)
class NeedsSpend:
    """The spend counter of ``plans[index]`` must be initialised first."""

    index: int


@dataclass(frozen=True)
class Refused:
    """``plans[index]`` refuses the request on ``limit``."""

    index: int
    limit: LimitName
    #: Requests or tokens this minute, or the spend units of the period.
    used: int
    #: Budget units held by the requests in flight.
    held: int = 0
    in_flight: int = 0


Verdict = Granted | NeedsSpend | Refused


@dataclass(frozen=True)
class Settlement:
    """What one finished request changes for one subject."""

    subject: str
    #: The window the request was counted in; None: it was not counted at admission.
    minute: int | None = None
    #: Real tokens minus the estimate.
    token_delta: int = 0
    #: The reservation to drop (``"<request id>/<units>"``).
    reservation: str | None = None
    #: The spend counter to add ``spend_units`` to (if it is initialised).
    spend_key: str | None = None
    spend_units: int = 0


@dataclass(frozen=True)
class SubjectUsage:
    """A subject's counters now."""

    requests: int
    tokens: int
    in_flight: int
    #: Spend units this period, None when the counter is not initialised.
    spent: int | None


class Counters(Protocol):
    """Where the counters live; see the module docstring."""

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
        """Check every plan; when all admit, count the request for each."""
        ...

    async def init_spend(
        self, group: str, subject: str, spend_key: str, *, spent: int, count: int, ttl: float
    ) -> bool | None:
        """Create the spend counter unless it exists; True when this call created it."""
        ...

    async def settle(self, group: str, items: Sequence[Settlement]) -> bool | None:
        """Apply what finished requests used (or queue it, in Redis); True when taken."""
        ...

    async def usage(
        self, group: str, subject: str, *, now: float, minute: int, spend_key: str | None
    ) -> SubjectUsage | None:
        """The subject's counters now."""
        ...


def reservation_member(reservation_id: str, units: int) -> str:
    """How a reservation is named in the in-flight set (``/``: Redis's running sum of the
    shares counts it; see :mod:`~modelyard.limits.redis_counters`)."""
    return f"{reservation_id}/{units}"


class _Flights:
    """One subject's requests in flight: reservation → (expiry, units), and their sum."""

    __slots__ = ("held", "members", "next_expiry")

    def __init__(self) -> None:
        self.members: dict[str, tuple[float, int]] = {}
        self.held = 0
        self.next_expiry = math.inf

    def add(self, member: str, units: int, expires: float) -> None:
        self.members[member] = (expires, units)
        self.held += units
        self.next_expiry = min(self.next_expiry, expires)

    def drop(self, member: str) -> None:
        entry = self.members.pop(member, None)
        if entry is not None:
            self.held -= entry[1]

    def sweep(self, now: float) -> None:
        """Drop the reservations expired at ``now`` (a pass only when one has)."""
        if now < self.next_expiry:
            return
        self.members = {m: entry for m, entry in self.members.items() if entry[0] > now}
        self.held = sum(units for _expires, units in self.members.values())
        self.next_expiry = min((e for e, _units in self.members.values()), default=math.inf)


class MemoryCounters:
    """The counters of one process (no ``await`` inside an operation: each is atomic).

    Admitting costs the same however many requests a subject has in flight (their
    reservations' sum is kept up to date)."""

    def __init__(self, *, max_entries: int = 100_000) -> None:
        #: (subject, minute) → [requests, tokens].
        self._windows: TTLCache[tuple[str, int], list[int]] = TTLCache(
            ttl=WINDOW_SECONDS, max_size=max_entries
        )
        #: (subject, spend key) → [spent units, requests that cost something].
        self._spend: TTLCache[tuple[str, str], list[int]] = TTLCache(ttl=0, max_size=max_entries)
        #: subject → its requests in flight; a subject leaves when it has none.
        self._flights: dict[str, _Flights] = {}

    def _flights_of(self, subject: str, now: float) -> _Flights | None:
        flights = self._flights.get(subject)
        if flights is not None:
            flights.sweep(now)
            if not flights.members:
                del self._flights[subject]
                return None
        return flights

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
    ) -> Verdict:
        reserved: list[int] = []
        windows: list[list[int] | None] = []
        for index, plan in enumerate(plans):
            window = self._windows.get((plan.subject, minute))
            windows.append(window)
            requests, tokens = window if window is not None else (0, 0)
            rpm = plan.requests_per_minute
            if rpm is not None and requests + 1 > rpm:
                return Refused(index, "requests_per_minute", requests)
            tpm = plan.tokens_per_minute
            if tpm is not None and tokens + estimated_tokens > tpm:
                return Refused(index, "tokens_per_minute", tokens)
            share = 0
            if plan.budget is not None and plan.spend_key is not None:
                spend = self._spend.get((plan.subject, plan.spend_key))
                if spend is None:
                    return NeedsSpend(index)
                flights = self._flights_of(plan.subject, now)
                held, count = (flights.held, len(flights.members)) if flights else (0, 0)
                if spend[0] + held >= plan.budget:
                    return Refused(index, "budget", spend[0], held, count)
                share = spend[0] // spend[1] if spend[1] > 0 else 0
            reserved.append(share)
        for plan, share, window in zip(plans, reserved, windows, strict=True):
            if window is None:
                self._windows.put((plan.subject, minute), [1, estimated_tokens])
            else:
                window[0] += 1
                window[1] += estimated_tokens
            flights = self._flights.get(plan.subject)
            if flights is None:
                flights = self._flights[plan.subject] = _Flights()
            flights.add(reservation_member(reservation_id, share), share, now + hold_seconds)
        return Granted(tuple(reserved))

    async def init_spend(
        self, group: str, subject: str, spend_key: str, *, spent: int, count: int, ttl: float
    ) -> bool:
        if self._spend.get((subject, spend_key)) is not None:
            return False
        self._spend.put((subject, spend_key), [spent, count], ttl=ttl)
        return True

    async def settle(self, group: str, items: Sequence[Settlement]) -> bool:
        for item in items:
            if item.minute is not None and item.token_delta:
                window = self._windows.get((item.subject, item.minute))
                if window is not None:
                    window[1] += item.token_delta
            if item.reservation is not None:
                flights = self._flights.get(item.subject)
                if flights is not None:
                    flights.drop(item.reservation)
                    if not flights.members:
                        del self._flights[item.subject]
            if item.spend_key is not None:
                spend = self._spend.get((item.subject, item.spend_key))
                if spend is not None:
                    spend[0] += item.spend_units
                    spend[1] += 1 if item.spend_units > 0 else 0
        return True

    async def usage(
        self, group: str, subject: str, *, now: float, minute: int, spend_key: str | None
    ) -> SubjectUsage:
        spend = self._spend.get((subject, spend_key)) if spend_key is not None else None
        window = self._windows.get((subject, minute))
        flights = self._flights_of(subject, now)
        return SubjectUsage(
            requests=window[0] if window is not None else 0,
            tokens=window[1] if window is not None else 0,
            in_flight=len(flights.members) if flights is not None else 0,
            spent=spend[0] if spend is not None else None,
        )


def ceil_seconds(seconds: float) -> int:
    """Whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds))
