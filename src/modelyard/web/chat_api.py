"""Small JSON endpoints of the chat page (``/web/api/…``, same auth and CSRF as the API).

* ``GET /web/api/conversations/{id}/messages``: the stored messages with their Markdown
  rendered on the server (see :mod:`modelyard.web.markdown`), tokens and cost;
* ``POST /web/api/markdown``: one text rendered the same way (an answer not stored);
* ``POST /web/api/chat/completions?replace_from=ID``: ``/v2/llm/chat/completions`` for
  *Regenerate* and *edit and resend*: once the new answer is complete — or stopped, then
  with what had arrived, marked ``stopped`` — the stored messages from ``ID`` on are
  replaced by the new question and answer, in one transaction. A failed answer changes
  nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from modelyard.api.chat_completion import AppChatRequest, complete_chat
from modelyard.api.deps import CurrentUser, SessionDep, SubscribedUser, app_state
from modelyard.conversations import service
from modelyard.conversations.turns import ChatTurn
from modelyard.db.models import ConversationMessage
from modelyard.errors import BadRequestError, NotFoundError
from modelyard.web.markdown import MAX_MARKDOWN_CHARS, render_markdown
from modelyard.web.rendering import format_usd

__all__ = ["RenderedMessage", "RenderedMessages", "router"]

logger = logging.getLogger("modelyard.conversations")

router = APIRouter(prefix="/web/api", include_in_schema=False)


class RenderedMessage(BaseModel):
    id: int
    role: str
    content: str
    #: ``content`` as safe HTML.
    html: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    #: The cost as shown (``$0.0000042``).
    cost: str
    latency_ms: int | None
    #: ``None``: complete; ``stopped``: the answer was stopped and holds what had arrived.
    status: str | None
    created_at: datetime


class RenderedMessages(BaseModel):
    conversation_id: int
    title: str
    items: list[RenderedMessage]


@router.get("/conversations/{conversation_id}/messages")
async def rendered_messages(
    conversation_id: int, user: CurrentUser, session: SessionDep
) -> RenderedMessages:
    """The conversation's messages, oldest first, with their Markdown rendered."""
    conversation = await service.get_conversation(
        session, user_id=user.id, conversation_id=conversation_id
    )
    messages = (await service.list_messages(session, conversation_id=conversation_id)).items
    html = await run_in_threadpool(lambda: [render_markdown(m.content) for m in messages])
    return RenderedMessages(
        conversation_id=conversation.id,
        title=conversation.title,
        items=[
            RenderedMessage(
                id=message.id,
                role=message.role,
                content=message.content,
                html=rendered,
                model=message.model,
                input_tokens=message.input_tokens,
                output_tokens=message.output_tokens,
                cost_usd=float(message.cost_usd),
                cost=format_usd(message.cost_usd),
                latency_ms=message.latency_ms,
                status=message.status,
                created_at=message.created_at,
            )
            for message, rendered in zip(messages, html, strict=True)
        ],
    )


class MarkdownRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_MARKDOWN_CHARS)


class MarkdownResponse(BaseModel):
    html: str


@router.post("/markdown")
async def markdown(body: MarkdownRequest, user: CurrentUser) -> MarkdownResponse:
    """``text`` rendered as the stored messages are."""
    return MarkdownResponse(html=await run_in_threadpool(render_markdown, body.text))


async def _check_replaced(session: SessionDep, conversation_id: int, message_id: int) -> None:
    role = await session.scalar(
        select(ConversationMessage.role).where(
            ConversationMessage.id == message_id,
            ConversationMessage.conversation_id == conversation_id,
        )
    )
    if role != "user":
        raise NotFoundError(
            f"Conversation {conversation_id} has no user message {message_id} to replace; "
            "reload the conversation and try again.",
            param="replace_from",
            code="message_not_found",
        )


@router.post("/chat/completions", response_model=None)
async def chat_replacing(
    body: AppChatRequest,
    request: Request,
    user: SubscribedUser,
    session: SessionDep,
    replace_from: Annotated[int, Query(ge=1, description="The first stored message replaced")],
) -> Response:
    """Answer ``body`` and replace the conversation's messages from ``replace_from`` on."""
    if body.conversation_id is None:
        raise BadRequestError(
            "replace_from needs the conversation_id of the conversation it belongs to.",
            param="conversation_id",
        )
    turn = await ChatTurn.begin(
        app_state(request).database,
        user_id=user.id,
        conversation_id=body.conversation_id,
        messages=body.messages,
    )
    await _check_replaced(session, turn.conversation_id, replace_from)
    await session.close()
    turn.replace_from = replace_from
    return await complete_chat(request, user, body, turn=turn)
