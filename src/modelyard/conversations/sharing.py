"""Read-only share links of conversations, which their owner can revoke.

Sharing gives a conversation a random ``share_id`` (:func:`secrets.token_urlsafe`, 128
bits); ``/share/{share_id}`` shows it to anyone who has the link, signed in or not, as it
is now (messages added later show too). Revoking forgets the id, so the link is a 404,
and sharing again makes a new one. Only the owner shares or revokes: another user's
conversation is a 404.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.conversations.service import get_conversation
from modelyard.db.models import Conversation
from modelyard.errors import NotFoundError

__all__ = ["SHARE_ID_BYTES", "revoke_share", "share_conversation", "shared_conversation"]

#: Random bytes of a share id (22 URL-safe characters).
SHARE_ID_BYTES = 16
_SHARE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _no_share() -> NotFoundError:
    return NotFoundError(
        "This shared conversation does not exist, or its owner stopped sharing it.",
        code="share_not_found",
    )


async def share_conversation(session: AsyncSession, *, user_id: int, conversation_id: int) -> str:
    """The conversation's share id, made now unless it is already shared."""
    conversation = await get_conversation(session, user_id=user_id, conversation_id=conversation_id)
    if conversation.share_id is not None:
        return conversation.share_id
    share_id = secrets.token_urlsafe(SHARE_ID_BYTES)
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(share_id=share_id, updated_at=Conversation.updated_at)
    )
    await session.commit()
    return share_id


async def revoke_share(session: AsyncSession, *, user_id: int, conversation_id: int) -> None:
    """Stop sharing the conversation (nothing to do when it is not shared)."""
    conversation = await get_conversation(session, user_id=user_id, conversation_id=conversation_id)
    if conversation.share_id is None:
        return
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(share_id=None, updated_at=Conversation.updated_at)
    )
    await session.commit()


async def shared_conversation(session: AsyncSession, share_id: str) -> Conversation:
    """The conversation shared as ``share_id``, or a 404 (never shared, or revoked)."""
    if not _SHARE_ID.fullmatch(share_id):
        raise _no_share()
    conversation = await session.scalar(
        select(Conversation).where(Conversation.share_id == share_id)
    )
    if conversation is None:
        raise _no_share()
    return conversation
