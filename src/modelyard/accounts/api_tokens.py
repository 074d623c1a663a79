"""Personal API tokens: created (shown once), resolved, listed and revoked."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from modelyard.accounts.access_changes import ACCESS_UNCHANGED
from modelyard.db.models import ApiToken, User
from modelyard.db.types import utcnow
from modelyard.security.tokens import DISPLAY_LENGTH, digest, new_api_token

__all__ = [
    "create_api_token",
    "list_api_tokens",
    "resolve_api_token",
    "revoke_all_api_tokens",
    "revoke_api_token",
]

#: ``last_used_at`` is written at most this often per token, to keep writes off hot paths.
LAST_USED_RESOLUTION = timedelta(minutes=1)


async def create_api_token(
    session: AsyncSession, *, user: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the record and the token (shown only once)."""
    token = new_api_token()
    record = ApiToken(
        user_id=user.id,
        name=name,
        token_digest=digest(token),
        display_prefix=token[:DISPLAY_LENGTH],
        expires_at=expires_at,
    )
    session.add(record)
    await session.commit()
    return record, token


async def resolve_api_token(session: AsyncSession, *, token: str) -> ApiToken | None:
    """Return the live token record (with its active user) for ``token``, else ``None``."""
    result = await session.execute(
        select(ApiToken)
        .options(joinedload(ApiToken.user))
        .where(ApiToken.token_digest == digest(token))
    )
    record = result.scalar_one_or_none()
    now = utcnow()
    if record is None or record.revoked_at is not None or not record.user.is_active:
        return None
    if record.expires_at is not None and record.expires_at <= now:
        return None
    if record.last_used_at is None or now - record.last_used_at >= LAST_USED_RESOLUTION:
        await session.execute(
            update(ApiToken).where(ApiToken.id == record.id).values(last_used_at=now),
            execution_options={ACCESS_UNCHANGED: True},
        )
        await session.commit()
        record.last_used_at = now
    return record


async def list_api_tokens(session: AsyncSession, *, user: User) -> list[ApiToken]:
    result = await session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    )
    return list(result.scalars())


async def revoke_api_token(session: AsyncSession, *, user: User, token_id: int) -> bool:
    """Revoke one of ``user``'s tokens; ``False`` if it is not theirs or does not exist.

    The record is changed through the session (not a bulk ``UPDATE``), so this process's
    token cache forgets exactly this token on commit (see ``accounts.access_changes``).
    """
    record = await session.scalar(
        select(ApiToken).where(
            ApiToken.id == token_id, ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)
        )
    )
    if record is None:
        return False
    record.revoked_at = utcnow()
    await session.commit()
    return True


async def revoke_all_api_tokens(session: AsyncSession, *, user_id: int) -> int:
    """Revoke every live token of the user; returns how many were revoked."""
    records = await session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    )
    now = utcnow()
    count = 0
    for record in records:
        record.revoked_at = now
        count += 1
    await session.commit()
    return count
