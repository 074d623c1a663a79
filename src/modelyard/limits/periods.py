"""Time windows of the limits: the UTC minute of the rate limits and the calendar budget
periods (``day``, ``week`` starting on Monday, ``month``), all in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

__all__ = [
    "PERIODS",
    "Period",
    "minute_of",
    "minute_resets_at",
    "period_bounds",
]

Period = Literal["day", "week", "month"]
#: The budget periods, shortest first.
PERIODS: tuple[Period, ...] = get_args(Period)


def minute_of(now: float) -> int:
    """The rate-limit window holding ``now`` (Unix seconds): minutes since the epoch."""
    return int(now // 60)


def minute_resets_at(minute: int) -> float:
    """When the window ``minute`` ends (Unix seconds)."""
    return (minute + 1) * 60.0


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """The calendar ``period`` holding ``now``: its start (inclusive) and end (exclusive)."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else (start.replace(month=start.month + 1))
        )
        return start, end
    raise ValueError(f"unknown budget period {period!r}; use one of {', '.join(PERIODS)}")
