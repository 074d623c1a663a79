"""Budgets and rate limits: the staff API per user and per API token, and the user's own
limits with their current consumption."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import select

from modelyard.api.deps import CurrentUser, SessionDep, StaffUser, app_state
from modelyard.db.models import ApiToken, UsageLimit
from modelyard.limits.enforcer import LimitEnforcer
from modelyard.limits.records import LimitsSpec, delete_limits, get_limits, put_limits
from modelyard.limits.rules import SubjectKind, SubjectLimits

__all__ = ["LimitsPublic", "LimitsUsagePublic", "MyLimits", "router"]

router = APIRouter(tags=["limits"])


class LimitsUsagePublic(BaseModel):
    """Consumption now: this UTC minute (fixed window) and this budget period."""

    requests_this_minute: int
    tokens_this_minute: int
    minute_resets_at: datetime
    in_flight: int
    spent_usd: Decimal
    period_started_at: datetime
    period_resets_at: datetime


class LimitsPublic(BaseModel):
    """One subject's limits (null: no limit of that kind) and its consumption."""

    subject: SubjectKind
    user_id: int | None
    api_token_id: int | None
    budget_usd: Decimal | None
    budget_period: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    updated_at: datetime
    usage: LimitsUsagePublic


class MyLimits(BaseModel):
    """The caller's account limits (null when none) and those of their API tokens."""

    user: LimitsPublic | None
    tokens: list[LimitsPublic]


async def _public(enforcer: LimitEnforcer, row: UsageLimit, owner_id: int) -> LimitsPublic:
    limits = SubjectLimits.of(row)
    usage = await enforcer.usage(limits, user_id=owner_id)
    return LimitsPublic(
        subject=limits.kind,
        user_id=row.user_id,
        api_token_id=row.api_token_id,
        budget_usd=row.budget_usd,
        budget_period=limits.period,
        requests_per_minute=row.requests_per_minute,
        tokens_per_minute=row.tokens_per_minute,
        updated_at=row.updated_at,
        usage=LimitsUsagePublic(**vars(usage)),
    )


async def _owner(session: SessionDep, kind: SubjectKind, subject_id: int) -> int:
    """The user whose counters hold the subject's (a token's owner)."""
    if kind == "user":
        return subject_id
    token = await session.get(ApiToken, subject_id)
    return token.user_id if token is not None else 0


async def _show(
    request: Request, session: SessionDep, kind: SubjectKind, subject_id: int
) -> LimitsPublic:
    row = await get_limits(session, kind, subject_id)
    return await _public(app_state(request).limits, row, await _owner(session, kind, subject_id))


async def _put(
    request: Request,
    response: Response,
    session: SessionDep,
    staff: StaffUser,
    kind: SubjectKind,
    subject_id: int,
    body: LimitsSpec,
) -> LimitsPublic:
    row, created = await put_limits(
        session, actor=staff, kind=kind, subject_id=subject_id, spec=body
    )
    enforcer = app_state(request).limits
    enforcer.invalidate(kind, subject_id)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return await _public(enforcer, row, await _owner(session, kind, subject_id))


async def _delete(
    request: Request, session: SessionDep, staff: StaffUser, kind: SubjectKind, subject_id: int
) -> None:
    await delete_limits(session, actor=staff, kind=kind, subject_id=subject_id)
    app_state(request).limits.invalidate(kind, subject_id)


#: The subjects in the paths, and their kind in the limits records.
SUBJECTS: dict[str, SubjectKind] = {"users": "user", "tokens": "token"}
Subject = Literal["users", "tokens"]


@router.get("/v2/admin/limits/{subject}/{subject_id}")
async def show_limits(
    subject: Subject, subject_id: int, request: Request, _staff: StaffUser, session: SessionDep
) -> LimitsPublic:
    """A user's or API token's limits and consumption (404 when it has none)."""
    return await _show(request, session, SUBJECTS[subject], subject_id)


@router.put("/v2/admin/limits/{subject}/{subject_id}")
async def set_limits(
    subject: Subject,
    subject_id: int,
    body: LimitsSpec,
    request: Request,
    response: Response,
    staff: StaffUser,
    session: SessionDep,
) -> LimitsPublic:
    """Set (201) or replace (200) the limits; fields left out are no limit. A token's
    limits are independent of its user's."""
    return await _put(request, response, session, staff, SUBJECTS[subject], subject_id, body)


@router.delete("/v2/admin/limits/{subject}/{subject_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_limits_of(
    subject: Subject, subject_id: int, request: Request, staff: StaffUser, session: SessionDep
) -> None:
    """Remove the limits."""
    await _delete(request, session, staff, SUBJECTS[subject], subject_id)


@router.get("/v2/users/me/limits")
async def my_limits(request: Request, user: CurrentUser, session: SessionDep) -> MyLimits:
    """The caller's limits and consumption: requests and tokens this minute, spend this
    period, and when each resets."""
    enforcer = app_state(request).limits
    own = await session.scalar(select(UsageLimit).where(UsageLimit.user_id == user.id))
    tokens = await session.scalars(
        select(UsageLimit)
        .join(ApiToken, UsageLimit.api_token_id == ApiToken.id)
        .where(ApiToken.user_id == user.id)
        .order_by(UsageLimit.api_token_id)
    )
    return MyLimits(
        user=await _public(enforcer, own, user.id) if own is not None else None,
        tokens=[await _public(enforcer, row, user.id) for row in tokens],
    )
