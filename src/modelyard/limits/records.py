"""The ``usage_limits`` rows: validated, replaced and deleted (each change audited), read for
the enforcer, and the spend of a period summed from ``usage_records``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.audit import record_audit
from modelyard.db.models import ApiToken, UsageLimit, UsageRecord, User
from modelyard.errors import ConflictError, NotFoundError
from modelyard.limits.periods import Period
from modelyard.limits.rules import SubjectKind

__all__ = [
    "MAX_RATE",
    "LimitsSpec",
    "delete_limits",
    "find_limits",
    "get_limits",
    "load_limits",
    "put_limits",
    "spend_since",
    "subject_name",
]

#: The largest requests or tokens per minute the column holds.
MAX_RATE = 2**31 - 1


class LimitsSpec(BaseModel):
    """A subject's limits; a field left out (or null) is no limit of that kind."""

    model_config = ConfigDict(extra="forbid")

    budget_usd: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=6)
    budget_period: Period = "month"
    requests_per_minute: int | None = Field(default=None, gt=0, le=MAX_RATE)
    tokens_per_minute: int | None = Field(default=None, gt=0, le=MAX_RATE)

    @model_validator(mode="after")
    def _some_limit(self) -> LimitsSpec:
        if (self.budget_usd, self.requests_per_minute, self.tokens_per_minute) == (None,) * 3:
            raise ValueError(
                "set at least one of budget_usd, requests_per_minute, tokens_per_minute "
                "(DELETE removes a subject's limits)"
            )
        return self


def subject_name(kind: SubjectKind, subject_id: int) -> str:
    return f"user {subject_id}" if kind == "user" else f"API token {subject_id}"


def _column(kind: SubjectKind) -> Literal["user_id", "api_token_id"]:
    return "user_id" if kind == "user" else "api_token_id"


async def find_limits(
    session: AsyncSession, kind: SubjectKind, subject_id: int
) -> UsageLimit | None:
    column = UsageLimit.user_id if kind == "user" else UsageLimit.api_token_id
    found: UsageLimit | None = await session.scalar(select(UsageLimit).where(column == subject_id))
    return found


async def get_limits(session: AsyncSession, kind: SubjectKind, subject_id: int) -> UsageLimit:
    """The subject's row, or a 404 saying whether the subject or its limits are missing."""
    await _subject_exists(session, kind, subject_id)
    row = await find_limits(session, kind, subject_id)
    if row is None:
        raise NotFoundError(f"{subject_name(kind, subject_id).capitalize()} has no limits.")
    return row


async def load_limits(
    session: AsyncSession, *, user_id: int | None, api_token_id: int | None
) -> list[UsageLimit]:
    """The rows of a user and of a token, in one query."""
    conditions = []
    if user_id is not None:
        conditions.append(UsageLimit.user_id == user_id)
    if api_token_id is not None:
        conditions.append(UsageLimit.api_token_id == api_token_id)
    if not conditions:
        return []
    return list(await session.scalars(select(UsageLimit).where(or_(*conditions))))


async def _subject_exists(session: AsyncSession, kind: SubjectKind, subject_id: int) -> None:
    model = User if kind == "user" else ApiToken
    if await session.get(model, subject_id) is None:
        raise NotFoundError(f"No {'user' if kind == 'user' else 'API token'} with id {subject_id}.")


async def put_limits(
    session: AsyncSession,
    *,
    actor: User | None,
    kind: SubjectKind,
    subject_id: int,
    spec: LimitsSpec,
) -> tuple[UsageLimit, bool]:
    """Create or replace the subject's limits; returns the row and whether it is new."""
    await _subject_exists(session, kind, subject_id)
    row = await find_limits(session, kind, subject_id)
    created = row is None
    values = spec.model_dump()
    if row is None:
        row = UsageLimit(**{_column(kind): subject_id}, **values)
        session.add(row)
        changed = [name for name, value in values.items() if value is not None]
    else:
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, values[name])
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(
            f"The limits of {subject_name(kind, subject_id)} changed meanwhile; try again.",
            code="concurrent_change",
        ) from None
    if created or changed:
        _audit(session, actor, "create" if created else "update", row, kind, subject_id, changed)
    await session.commit()
    return row, created


async def delete_limits(
    session: AsyncSession, *, actor: User | None, kind: SubjectKind, subject_id: int
) -> None:
    row = await get_limits(session, kind, subject_id)
    _audit(session, actor, "delete", row, kind, subject_id, [])
    await session.delete(row)
    await session.commit()


def _audit(
    session: AsyncSession,
    actor: User | None,
    action: str,
    row: UsageLimit,
    kind: SubjectKind,
    subject_id: int,
    changed: list[str],
) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="usage_limit",
        entity_id=row.id,
        entity_name=subject_name(kind, subject_id),
        changed_fields=changed,
    )


async def spend_since(
    session: AsyncSession, kind: SubjectKind, subject_id: int, start: datetime
) -> tuple[Decimal, int]:
    """The subject's spend recorded since ``start`` and how many requests cost something."""
    column = UsageRecord.user_id if kind == "user" else UsageRecord.api_token_id
    query = select(
        func.coalesce(func.sum(UsageRecord.cost_usd), 0),
        func.coalesce(func.sum(case((UsageRecord.cost_usd > 0, 1), else_=0)), 0),
    ).where(column == subject_id, UsageRecord.created_at >= start)
    total, count = (await session.execute(query)).one()
    return Decimal(str(total)), int(count)
