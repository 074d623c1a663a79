"""The admin's index page: today's traffic (UTC) from the usage records, at a glance.

Today's requests, their cost, the errors among them (any status outside 2xx), the users
who made them, and the models asked for most (by requests, with their cost); beside
them, how many providers and user accounts are active.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import Provider, UsageRecord, User

__all__ = ["TOP_MODELS", "Dashboard", "ModelFigures", "today_figures"]

#: How many models the "top models" table lists.
TOP_MODELS = 5


@dataclass(frozen=True)
class ModelFigures:
    model: str
    requests: int
    errors: int
    cost_usd: Decimal


@dataclass(frozen=True)
class Dashboard:
    day: date
    requests: int
    cost_usd: Decimal
    errors: int
    users_today: int
    top_models: list[ModelFigures]
    active_providers: int
    providers: int
    active_users: int
    users: int

    @property
    def error_share(self) -> float:
        """The errors as a share of the requests (0 when there were none)."""
        return self.errors / self.requests if self.requests else 0.0


def _money(value: Any) -> Decimal:
    """A summed cost as read back (a ``float`` on SQLite, a ``Decimal`` elsewhere)."""
    return Decimal(str(value or 0)).quantize(Decimal("0.00000001"))


def _is_error() -> Any:
    failed = (UsageRecord.status < 200) | (UsageRecord.status >= 300)
    return func.coalesce(func.sum(case((failed, 1), else_=0)), 0)


async def today_figures(session: AsyncSession, now: datetime | None = None) -> Dashboard:
    """The figures of the UTC day of ``now`` (default: the current time)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    start = datetime.combine(moment.date(), time(), tzinfo=UTC)
    during = (UsageRecord.created_at >= start, UsageRecord.created_at < start + timedelta(days=1))

    totals = (
        await session.execute(
            select(
                func.count(UsageRecord.id),
                func.coalesce(func.sum(UsageRecord.cost_usd), 0),
                _is_error(),
                func.count(distinct(UsageRecord.user_id)),
            ).where(*during)
        )
    ).one()
    requests = func.count(UsageRecord.id).label("requests")
    top = await session.execute(
        select(
            UsageRecord.model,
            requests,
            _is_error(),
            func.coalesce(func.sum(UsageRecord.cost_usd), 0),
        )
        .where(*during)
        .group_by(UsageRecord.model)
        .order_by(requests.desc(), UsageRecord.model)
        .limit(TOP_MODELS)
    )
    providers = (
        await session.execute(
            select(func.count(Provider.id), func.count(case((Provider.is_active, 1))))
        )
    ).one()
    users = (
        await session.execute(select(func.count(User.id), func.count(case((User.is_active, 1)))))
    ).one()
    return Dashboard(
        day=moment.date(),
        requests=int(totals[0]),
        cost_usd=_money(totals[1]),
        errors=int(totals[2]),
        users_today=int(totals[3]),
        top_models=[
            ModelFigures(
                model=row[0], requests=int(row[1]), errors=int(row[2]), cost_usd=_money(row[3])
            )
            for row in top
        ],
        providers=int(providers[0]),
        active_providers=int(providers[1]),
        users=int(users[0]),
        active_users=int(users[1]),
    )
