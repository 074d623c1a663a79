"""Usage and cost: ``GET /v2/usage`` (totals and breakdowns) and its CSV export.

Users see their own usage; staff see everyone's, may narrow it to one ``user_id`` and get
a ``by_user`` breakdown. The period is whole UTC days, ``start`` to ``end`` included
(default: the last 30 days, today included). Costs are USD strings with 8 decimals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from modelyard.api.deps import CurrentUser, SessionDep, app_state
from modelyard.api.errors import MAX_STORED_INTEGER
from modelyard.db.models import User
from modelyard.db.types import utcnow
from modelyard.errors import BadRequestError, PermissionDeniedError
from modelyard.usage.queries import Group, Metrics, UsageQuery, export_csv, format_cost, summarize

__all__ = [
    "DayUsage",
    "ModelUsage",
    "ProviderUsage",
    "TokenUsage",
    "UsageMetrics",
    "UsageReport",
    "UserUsage",
    "router",
]

router = APIRouter(prefix="/v2/usage", tags=["usage"])

_Row = TypeVar("_Row", bound="UsageMetrics")

#: The default period: this many days, today included.
DEFAULT_DAYS = 30
#: The longest period one request may cover.
MAX_DAYS = 3660
#: The first day a period may not end on: the moment after it must be a valid datetime.
LAST_DAY = date.max


class UsageMetrics(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    #: USD, fixed-point with 8 decimals (``"0.00001234"``).
    cost_usd: str
    errors: int
    cache_hits: int


class DayUsage(UsageMetrics):
    day: date


class ModelUsage(UsageMetrics):
    #: The model as the client named it (a route name, ``provider/model``, …).
    model: str


class ProviderUsage(UsageMetrics):
    #: ``None`` for requests refused before a provider was chosen (unknown model, …).
    provider: str | None


class TokenUsage(UsageMetrics):
    #: ``None`` for requests made from the web app (a session, no API token).
    api_token_id: int | None
    name: str | None
    display_prefix: str | None


class UserUsage(UsageMetrics):
    user_id: int | None
    email: str | None


class UsageReport(BaseModel):
    start: date
    end: date
    #: The user whose usage this is; ``None``: everyone's (staff).
    user_id: int | None
    totals: UsageMetrics
    by_day: list[DayUsage]
    by_model: list[ModelUsage]
    by_provider: list[ProviderUsage]
    by_token: list[TokenUsage]
    #: Staff only, when no ``user_id`` is given.
    by_user: list[UserUsage] | None = None


def _metric_values(metrics: Metrics) -> dict[str, Any]:
    return {
        "requests": metrics.requests,
        "input_tokens": metrics.input_tokens,
        "output_tokens": metrics.output_tokens,
        "cost_usd": format_cost(metrics.cost_usd),
        "errors": metrics.errors,
        "cache_hits": metrics.cache_hits,
    }


def _rows(model: type[_Row], groups: list[Group]) -> list[_Row]:
    return [model(**group.key, **_metric_values(group.metrics)) for group in groups]


def usage_query(
    user: User, start: date | None, end: date | None, user_id: int | None
) -> UsageQuery:
    """The period and user a request asks for, checked against who is asking."""
    end = end or utcnow().date()
    if end >= LAST_DAY:
        raise BadRequestError(
            f"end must be before {LAST_DAY.isoformat()} (the last day a period can end).",
            param="end",
        )
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadRequestError("start must be on or before end.", param="start")
    if (end - start).days >= MAX_DAYS:
        raise BadRequestError(f"The period may cover {MAX_DAYS} days at most.", param="start")
    if not user.is_staff:
        if user_id is not None and user_id != user.id:
            raise PermissionDeniedError(
                "Only staff may see another user's usage.", code="staff_only", param="user_id"
            )
        user_id = user.id
    return UsageQuery(start=start, end=end, user_id=user_id)


StartParam = Query(default=None, description="First day (UTC, ISO date); default: 29 days ago.")
EndParam = Query(default=None, description="Last day, included (UTC, ISO date); default: today.")
UserParam = Query(
    default=None, ge=1, le=MAX_STORED_INTEGER, description="Staff: only this user's usage."
)


@router.get("")
async def usage_report(
    user: CurrentUser,
    session: SessionDep,
    start: date | None = StartParam,
    end: date | None = EndParam,
    user_id: int | None = UserParam,
) -> UsageReport:
    """Requests, tokens, cost, errors and cache hits: totals and breakdowns."""
    query = usage_query(user, start, end, user_id)
    everyone = query.user_id is None
    summary = await summarize(session, query, by_user=everyone)
    return UsageReport(
        start=query.start,
        end=query.end,
        user_id=query.user_id,
        totals=UsageMetrics(**_metric_values(summary.totals)),
        by_day=_rows(DayUsage, summary.by_day),
        by_model=_rows(ModelUsage, summary.by_model),
        by_provider=_rows(ProviderUsage, summary.by_provider),
        by_token=_rows(TokenUsage, summary.by_token),
        by_user=_rows(UserUsage, summary.by_user) if summary.by_user is not None else None,
    )


@router.get("/export.csv", response_class=StreamingResponse)
async def usage_export(
    request: Request,
    user: CurrentUser,
    start: date | None = StartParam,
    end: date | None = EndParam,
    user_id: int | None = UserParam,
) -> StreamingResponse:
    """The records themselves, one CSV row per request (same filters as ``/v2/usage``)."""
    query = usage_query(user, start, end, user_id)
    engine = app_state(request).database.engine

    async def body() -> AsyncIterator[str]:
        async with engine.connect() as connection:
            async for piece in export_csv(connection, query):
                yield piece

    filename = f"modelyard-usage-{query.start.isoformat()}-to-{query.end.isoformat()}.csv"
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
