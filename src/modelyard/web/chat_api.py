"""Small JSON endpoints of the chat page (``/web/api/…``, same auth and CSRF as the API).

* ``GET /web/api/conversations/{id}/messages``: the shown branch's messages with their
  Markdown rendered on the server (see :mod:`modelyard.web.markdown`), tokens, cost and
  where each stands among its versions;
* ``PUT /web/api/conversations/{id}/shown``: show another version (``message_id``) and
  what follows its newest continuation;
* ``POST /web/api/markdown``: one text rendered the same way (an answer not stored);
* ``POST /web/api/chat/completions?replace_from=ID``: ``/v2/llm/chat/completions`` for
  *Regenerate* and *edit and resend*: once the new answer is complete — or stopped, then
  with what had arrived, marked ``stopped`` — it is stored as a new version of the user
  message ``ID`` (see :mod:`modelyard.conversations.versions`) and shown; the earlier
  versions stay. A failed answer changes nothing.
* ``POST /web/api/chat/completions?continue_from=ID``: *Continue* a stopped answer: the
  model is asked to go on from where it stopped, and what it writes is appended to the
  stored answer ``ID`` (with its tokens and cost).
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
from modelyard.conversations.attachments import attachments_of
from modelyard.conversations.turns import STOPPED, ChatTurn
from modelyard.conversations.versions import all_messages, select_version, shown_branch, versions
from modelyard.db.models import Conversation, ConversationMessage
from modelyard.errors import BadRequestError, NotFoundError
from modelyard.gateway.schemas import ChatMessage
from modelyard.web.attachments_api import AttachmentPublic
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
    #: 1-based position among the message's versions, and their number and ids.
    version: int
    version_count: int
    version_ids: list[int]
    #: The files attached to the message.
    attachments: list[AttachmentPublic] = []


class RenderedMessages(BaseModel):
    conversation_id: int
    title: str
    items: list[RenderedMessage]


@router.get("/conversations/{conversation_id}/messages")
async def rendered_messages(
    conversation_id: int, user: CurrentUser, session: SessionDep
) -> RenderedMessages:
    """The shown branch's messages, oldest first, with their Markdown rendered."""
    conversation = await service.get_conversation(
        session, user_id=user.id, conversation_id=conversation_id
    )
    return await _rendered(session, conversation)


async def _rendered(session: SessionDep, conversation: Conversation) -> RenderedMessages:
    every = await all_messages(session, conversation.id)
    messages = shown_branch(conversation, every)
    placed = versions(messages, every)
    attached = await attachments_of(session, [message.id for message in messages])
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
                version=version.index,
                version_count=version.count,
                version_ids=list(version.ids),
                attachments=[AttachmentPublic.of(row) for row in attached.get(message.id, [])],
            )
            for message, rendered, version in zip(messages, html, placed, strict=True)
        ],
    )


class ShownVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: int = Field(ge=1)


@router.put("/conversations/{conversation_id}/shown")
async def show_version(
    conversation_id: int, body: ShownVersion, user: CurrentUser, session: SessionDep
) -> RenderedMessages:
    """Show the branch through ``message_id`` (another version of a message)."""
    conversation = await service.get_conversation(
        session, user_id=user.id, conversation_id=conversation_id
    )
    await select_version(session, conversation, body.message_id)
    return await _rendered(session, conversation)


class MarkdownRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_MARKDOWN_CHARS)


class MarkdownResponse(BaseModel):
    html: str


@router.post("/markdown")
async def markdown(body: MarkdownRequest, user: CurrentUser) -> MarkdownResponse:
    """``text`` rendered as the stored messages are."""
    return MarkdownResponse(html=await run_in_threadpool(render_markdown, body.text))


#: What the model is asked when the user continues a stopped answer (never stored).
CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without "
    "repeating anything already written and without any preamble."
)


async def _check_message(
    session: SessionDep, conversation_id: int, message_id: int, *, param: str
) -> None:
    row = (
        await session.execute(
            select(ConversationMessage.role, ConversationMessage.status).where(
                ConversationMessage.id == message_id,
                ConversationMessage.conversation_id == conversation_id,
            )
        )
    ).one_or_none()
    if param == "replace_from" and (row is None or row.role != "user"):
        raise NotFoundError(
            f"Conversation {conversation_id} has no user message {message_id} to replace; "
            "reload the conversation and try again.",
            param=param,
            code="message_not_found",
        )
    if param == "continue_from" and (
        row is None or row.role != "assistant" or row.status != STOPPED
    ):
        raise NotFoundError(
            f"Conversation {conversation_id} has no stopped answer {message_id} to "
            "continue; reload the conversation and try again.",
            param=param,
            code="message_not_found",
        )


@router.post("/chat/completions", response_model=None)
async def chat_in_history(
    body: AppChatRequest,
    request: Request,
    user: SubscribedUser,
    session: SessionDep,
    replace_from: Annotated[
        int | None, Query(ge=1, description="The user message this turn is a new version of")
    ] = None,
    continue_from: Annotated[
        int | None, Query(ge=1, description="The stopped answer this turn continues")
    ] = None,
) -> Response:
    """Answer ``body`` as a new version of ``replace_from``, or as the rest of the stopped
    answer ``continue_from`` (exactly one of them)."""
    if (replace_from is None) == (continue_from is None):
        raise BadRequestError(
            "Give exactly one of replace_from (regenerate or edit) and continue_from "
            "(continue a stopped answer).",
            param="replace_from",
        )
    if body.conversation_id is None:
        raise BadRequestError(
            "replace_from and continue_from need the conversation_id of the conversation "
            "they belong to.",
            param="conversation_id",
        )
    turn = await ChatTurn.begin(
        app_state(request).database,
        user_id=user.id,
        conversation_id=body.conversation_id,
        messages=body.messages,
    )
    if replace_from is not None:
        await _check_message(session, turn.conversation_id, replace_from, param="replace_from")
        turn.replace_from = replace_from
    else:
        assert continue_from is not None
        await _check_message(session, turn.conversation_id, continue_from, param="continue_from")
        turn.continues, turn.question = continue_from, None
        ask = ChatMessage(role="user", content=CONTINUE_PROMPT)
        body = body.model_copy(update={"messages": [*body.messages, ask]})
    await session.close()
    return await complete_chat(request, user, body, turn=turn)
