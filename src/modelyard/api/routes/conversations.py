"""The signed-in user's chat history: list and search, read, rename, delete, export.

History is private: another user's conversation is a 404 for everyone, staff included.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response, status

from modelyard.api.deps import CurrentUser, SessionDep
from modelyard.api.schemas.conversations import (
    ConversationDetail,
    ConversationPage,
    ConversationPublic,
    ConversationUpdate,
    MessagePage,
    MessagePublic,
)
from modelyard.conversations import service
from modelyard.conversations.export import export_filename, to_markdown
from modelyard.conversations.organise import organise_conversation
from modelyard.conversations.settings import update_settings
from modelyard.db.models import Conversation
from modelyard.db.types import utcnow

__all__ = ["router"]

logger = logging.getLogger("modelyard.conversations")

router = APIRouter(prefix="/v2/conversations", tags=["conversations"])

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1 to 100)")]
MessageLimit = Annotated[int, Query(ge=1, le=500, description="Messages per page (1 to 500)")]
Offset = Annotated[int, Query(ge=0, description="Items to skip")]


def _next_offset(offset: int, count: int, total: int) -> int | None:
    following = offset + count
    return following if count and following < total else None


async def _detail(session: SessionDep, conversation: Conversation) -> ConversationDetail:
    totals = await service.totals(session, conversation_id=conversation.id)
    return ConversationDetail(
        **ConversationPublic.model_validate(conversation).model_dump(),
        message_count=totals.message_count,
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        total_tokens=totals.input_tokens + totals.output_tokens,
        cost_usd=totals.cost_usd,
    )


@router.get("/")
async def list_conversations(
    user: CurrentUser,
    session: SessionDep,
    limit: Limit = 20,
    offset: Offset = 0,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Search titles and messages (case-insensitive)"),
    ] = None,
    archived: Annotated[
        bool, Query(description="Only the archived conversations, the last archived first")
    ] = False,
) -> ConversationPage:
    """The user's conversations: pinned ones first, then the most recently active; the
    archived ones only with ``archived=true``."""
    page = await service.list_conversations(
        session,
        user_id=user.id,
        limit=limit,
        offset=offset,
        query=q or None,
        archived=archived,
        pinned_first=True,
    )
    return ConversationPage(
        items=[ConversationPublic.model_validate(c) for c in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=_next_offset(offset, len(page.items), page.total),
    )


@router.get("/{conversation_id}")
async def get_conversation(
    conversation_id: int, user: CurrentUser, session: SessionDep
) -> ConversationDetail:
    """One conversation with its totals: messages, tokens and cost."""
    conversation = await service.get_conversation(
        session, user_id=user.id, conversation_id=conversation_id
    )
    return await _detail(session, conversation)


@router.get("/{conversation_id}/messages")
async def list_messages(
    conversation_id: int,
    user: CurrentUser,
    session: SessionDep,
    limit: MessageLimit = 100,
    offset: Offset = 0,
) -> MessagePage:
    """The messages of the conversation's shown branch (see
    :mod:`~modelyard.conversations.versions`), oldest first."""
    conversation = await service.get_conversation(
        session, user_id=user.id, conversation_id=conversation_id
    )
    page = await service.list_messages(
        session, conversation=conversation, limit=limit, offset=offset
    )
    return MessagePage(
        items=[MessagePublic.model_validate(m) for m in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=_next_offset(offset, len(page.items), page.total),
    )


@router.patch("/{conversation_id}")
async def update_conversation(
    conversation_id: int, body: ConversationUpdate, user: CurrentUser, session: SessionDep
) -> ConversationDetail:
    """Rename (1 to 200 characters), pin or unpin, archive or unarchive the conversation,
    or change its settings (system prompt, temperature, max tokens; ``null`` clears one);
    its place by activity is kept."""
    conversation = await organise_conversation(
        session,
        user_id=user.id,
        conversation_id=conversation_id,
        title=body.title,
        pinned=body.pinned,
        archived=body.archived,
    )
    if body.settings():
        conversation = await update_settings(
            session, user_id=user.id, conversation_id=conversation_id, values=body.settings()
        )
    return await _detail(session, conversation)


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_conversation(
    conversation_id: int, request: Request, user: CurrentUser, session: SessionDep
) -> None:
    """Delete the conversation and all its messages (usage records keep its id)."""
    await service.get_conversation(session, user_id=user.id, conversation_id=conversation_id)
    await service.delete_conversation(session, user_id=user.id, conversation_id=conversation_id)


@router.get("/{conversation_id}/export", response_class=Response)
async def export_conversation(
    conversation_id: int,
    user: CurrentUser,
    session: SessionDep,
    format: Literal["json", "markdown"] = "json",
) -> Response:
    """The whole conversation as a download: ``json`` or ``markdown``."""
    conversation = await service.get_conversation(
        session, user_id=user.id, conversation_id=conversation_id
    )
    detail = await _detail(session, conversation)
    messages = (await service.list_messages(session, conversation=conversation)).items
    if format == "markdown":
        totals = service.Totals(
            detail.message_count, detail.input_tokens, detail.output_tokens, detail.cost_usd
        )
        content = to_markdown(conversation, messages, totals).encode()
        media_type, extension = "text/markdown; charset=utf-8", "md"
    else:
        document = {
            "conversation": detail.model_dump(mode="json"),
            "messages": [MessagePublic.model_validate(m).model_dump(mode="json") for m in messages],
            "exported_at": utcnow().isoformat(),
        }
        content = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        media_type, extension = "application/json", "json"
    filename = export_filename(conversation, extension)
    return Response(
        content,
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
