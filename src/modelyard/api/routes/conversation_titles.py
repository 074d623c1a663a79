"""A title for a new conversation, written by ``MODELYARD_TITLE_MODEL`` from its first
exchange (see :mod:`modelyard.conversations.titles`).

The chat page asks once the first answer has streamed, so the answer never waits for it.
The model is asked through the gateway as the user, metered and recorded like chat; when
no model is set, the user may not chat, the title is not automatic any more, or the model
fails, the title stays as it is (the question's first words) and ``generated`` is false.
"""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel

from modelyard.api.deps import CurrentUser, SessionDep, app_state, has_chat_access, metered_call
from modelyard.conversations import titles
from modelyard.conversations.service import get_conversation
from modelyard.errors import ModelyardError
from modelyard.gateway.schemas import ChatCompletionRequest
from modelyard.usage.completion import CallDetails, answer_text

__all__ = ["router"]

logger = logging.getLogger("modelyard.conversations")

router = APIRouter(prefix="/v2/conversations", tags=["conversations"])

#: Seconds the title model may take before the first words are kept.
TITLE_TIMEOUT_SECONDS = 20.0


class TitleResult(BaseModel):
    conversation_id: int
    title: str
    #: Whether the title model wrote this title just now.
    generated: bool


@router.post("/{conversation_id}/title")
async def generate_title(
    conversation_id: int, request: Request, user: CurrentUser, session: SessionDep
) -> TitleResult:
    """Title the conversation from its first exchange with the title model, when one is
    set and the title is still the question's first words."""
    conversation = await get_conversation(session, user_id=user.id, conversation_id=conversation_id)
    kept = TitleResult(conversation_id=conversation.id, title=conversation.title, generated=False)
    settings = app_state(request).settings
    model = settings.title_model
    if not model or (settings.require_subscription and not has_chat_access(user)):
        return kept
    exchange = await titles.first_exchange(session, conversation)
    if exchange is None:
        return kept
    await session.close()  # not held while the model answers
    title = await _ask(request, user, model, exchange)
    if title is None or not await titles.set_generated_title(session, exchange, title):
        return kept
    return TitleResult(conversation_id=conversation.id, title=title, generated=True)


async def _ask(
    request: Request, user: CurrentUser, model: str, exchange: titles.FirstExchange
) -> str | None:
    """The title model's title, or ``None`` (a failure is logged, never shown)."""
    messages = titles.title_messages(exchange)
    body = ChatCompletionRequest.model_validate(
        {"model": model, "messages": messages, "max_tokens": titles.TITLE_MAX_TOKENS}
    )
    call = await metered_call(
        request,
        user,
        CallDetails(
            endpoint=titles.TITLE_ENDPOINT,
            model=model,
            messages=messages,
            conversation_id=exchange.conversation_id,
        ),
    )
    try:
        with anyio.fail_after(TITLE_TIMEOUT_SECONDS):
            answer = await call.complete(body, cache_ttl=0)
    except (ModelyardError, TimeoutError) as error:
        logger.warning(
            "Conversation %s: the title model %s gave no title (%s)",
            exchange.conversation_id,
            model,
            getattr(error, "code", None) or type(error).__name__,
        )
        return None
    return titles.clean_title(answer_text(answer))
