"""Responses kept for their user: saved, loaded, deleted, and purged once expired.

Every query is scoped by the owner's id: another user's response, like an expired one, is
indistinguishable from one that does not exist, and all raise the same 404. Rows live
``responses_retention_days`` (see :mod:`modelyard.config`); loads ignore expired rows, and
each save deletes every expired row (an indexed delete that usually finds nothing), so no
scheduler is needed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import StoredResponse
from modelyard.db.types import utcnow
from modelyard.errors import NotFoundError

__all__ = ["delete_response", "load_response", "not_found", "purge_expired", "save_response"]


def not_found(response_id: str, param: str = "response_id") -> NotFoundError:
    """The one 404 for a response that is missing, expired, or someone else's."""
    return NotFoundError(
        f"No response with id {response_id!r} for this account (responses are kept for a "
        "limited time, and only when created with store=true).",
        param=param,
        code="response_not_found",
    )


async def purge_expired(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete every expired response; how many were deleted (not committed)."""
    result = await session.execute(
        delete(StoredResponse).where(StoredResponse.expires_at <= (now or utcnow()))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def save_response(
    session: AsyncSession,
    *,
    user_id: int,
    response: dict[str, Any],
    context: list[dict[str, Any]],
    retention_days: int,
) -> None:
    """Keep ``response`` and its chat-form ``context`` for ``user_id``; expired rows go."""
    now = utcnow()
    await purge_expired(session, now=now)
    session.add(
        StoredResponse(
            id=response["id"],
            user_id=user_id,
            model=str(response.get("model") or ""),
            response=response,
            context=context,
            created_at=now,
            expires_at=now + timedelta(days=retention_days),
        )
    )
    await session.commit()


async def load_response(
    session: AsyncSession, *, user_id: int, response_id: str, param: str = "response_id"
) -> StoredResponse:
    """The caller's unexpired response ``response_id`` (else the one 404)."""
    row = await session.scalar(
        select(StoredResponse).where(
            StoredResponse.id == response_id,
            StoredResponse.user_id == user_id,
            StoredResponse.expires_at > utcnow(),
        )
    )
    if row is None:
        raise not_found(response_id, param)
    return row


async def delete_response(session: AsyncSession, *, user_id: int, response_id: str) -> None:
    """Delete the caller's response ``response_id`` (the one 404 when it has none)."""
    await load_response(session, user_id=user_id, response_id=response_id)
    await session.execute(
        delete(StoredResponse).where(
            StoredResponse.id == response_id, StoredResponse.user_id == user_id
        )
    )
    await session.commit()
