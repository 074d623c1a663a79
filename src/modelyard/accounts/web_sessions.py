"""Web sessions behind the HTTP-only cookie, each with its own CSRF token."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from modelyard.db.models import User, WebSession
from modelyard.db.types import utcnow
from modelyard.security.tokens import digest, new_session_token

__all__ = ["end_user_sessions", "end_web_session", "resolve_web_session", "start_web_session"]


async def start_web_session(
    session: AsyncSession, *, user: User, ttl: timedelta
) -> tuple[WebSession, str]:
    """Start a session for ``user``; returns the record and the cookie value."""
    token = new_session_token()
    record = WebSession(
        user_id=user.id,
        token_digest=digest(token),
        csrf_token=secrets.token_urlsafe(24),
        expires_at=utcnow() + ttl,
    )
    session.add(record)
    await session.commit()
    return record, token


async def resolve_web_session(session: AsyncSession, *, token: str) -> WebSession | None:
    """Return the live session (with its active user) for a cookie value, else ``None``."""
    result = await session.execute(
        select(WebSession)
        .options(joinedload(WebSession.user))
        .where(WebSession.token_digest == digest(token))
    )
    record = result.scalar_one_or_none()
    if record is None or record.expires_at <= utcnow() or not record.user.is_active:
        return None
    return record


async def end_web_session(session: AsyncSession, *, token: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.token_digest == digest(token)))
    await session.commit()


async def end_user_sessions(
    session: AsyncSession, *, user_id: int, keep_id: int | None = None, commit: bool = True
) -> int:
    """End every web session of the user (but ``keep_id``); returns how many ended."""
    statement = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_id is not None:
        statement = statement.where(WebSession.id != keep_id)
    result = await session.execute(statement)
    if commit:
        await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
