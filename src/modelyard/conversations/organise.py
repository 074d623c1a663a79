"""Pinning and archiving a user's conversations.

A pinned conversation heads the sidebar; an archived one (``archived_at`` set) leaves it
for the Archived list until it is unarchived. Neither changes its place by activity
(``updated_at``), as renaming does not. Another user's conversation is a 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.conversations.service import get_conversation
from modelyard.db.models import Conversation
from modelyard.db.types import utcnow

__all__ = ["organise_conversation"]


async def organise_conversation(
    session: AsyncSession,
    *,
    user_id: int,
    conversation_id: int,
    title: str | None = None,
    pinned: bool | None = None,
    archived: bool | None = None,
) -> Conversation:
    """Rename, pin or unpin, archive or unarchive the conversation (``None``: unchanged),
    in one transaction; archiving an archived conversation keeps its first date."""
    conversation = await get_conversation(session, user_id=user_id, conversation_id=conversation_id)
    values: dict[str, Any] = {}
    if title is not None:
        values["title"] = title
    if pinned is not None:
        values["pinned"] = pinned
    if archived is not None and archived != (conversation.archived_at is not None):
        values["archived_at"] = utcnow() if archived else None
    if values:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(**values, updated_at=Conversation.updated_at)
        )
        await session.commit()
        await session.refresh(conversation)
    return conversation
