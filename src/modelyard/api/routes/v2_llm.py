"""The app's own chat route: the OpenAI body plus an optional ``conversation_id``.

Each turn is kept in the user's history (see :mod:`modelyard.conversations.turns`): the
conversation's id comes back in the ``x-modelyard-conversation-id`` header, JSON and
stream alike. An upstream failure stores nothing: the new user message and the answer
are written together once the answer is complete, and a conversation this request
created is removed again when it stays empty.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from modelyard.api.deps import SubscribedUser, app_state
from modelyard.api.routes.v1_openai import complete_chat
from modelyard.conversations.turns import ChatTurn
from modelyard.gateway.schemas import ChatCompletionRequest

__all__ = ["CONVERSATION_HEADER", "AppChatRequest", "router"]

router = APIRouter(prefix="/v2/llm", tags=["chat"])

#: The response header naming the conversation the turn was stored in.
CONVERSATION_HEADER = "x-modelyard-conversation-id"


class AppChatRequest(ChatCompletionRequest):
    #: The conversation this message continues; a new one is started when omitted.
    conversation_id: int | None = Field(default=None, ge=1)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: AppChatRequest, request: Request, user: SubscribedUser
) -> Response:
    """Chat for the web app; the turn is kept in the conversation's history.

    The client sends the whole message list; only the last user message and the
    answer are stored. An unknown or another user's ``conversation_id`` is a 404.
    """
    state = app_state(request)
    turn = await ChatTurn.begin(
        state.database,
        user_id=user.id,
        conversation_id=body.conversation_id,
        messages=body.messages,
    )
    try:
        response = await complete_chat(
            request, user, body, conversation_id=turn.conversation_id, on_complete=turn.store
        )
    except BaseException:
        await turn.abandon()
        raise
    response.headers[CONVERSATION_HEADER] = str(turn.conversation_id)
    if isinstance(response, StreamingResponse):
        response.body_iterator = turn.guard(response.body_iterator)
    return response
