"""The app's own chat route: the OpenAI body plus an optional ``conversation_id``.

Each turn is kept in the user's history (see :mod:`modelyard.conversations.turns`): the
conversation's id comes back in the ``x-modelyard-conversation-id`` header, JSON and
stream alike. The new user message and the answer are written together once the answer
is complete — or, when the client leaves or stops a streamed answer, with what had
arrived, marked ``stopped``. An upstream failure stores nothing, and a conversation this
request created is removed again when it stays empty. :func:`answer_turn` is that flow,
for this route and the web chat's replacing one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import Field

from modelyard.api.deps import SubscribedUser, app_state
from modelyard.api.metering import MeteredStream
from modelyard.api.routes.v1_openai import complete_chat
from modelyard.conversations.turns import ChatTurn
from modelyard.db.models import User
from modelyard.gateway.schemas import ChatCompletionRequest

__all__ = ["CONVERSATION_HEADER", "AppChatRequest", "answer_turn", "router"]

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
    turn = await ChatTurn.begin(
        app_state(request).database,
        user_id=user.id,
        conversation_id=body.conversation_id,
        messages=body.messages,
    )
    return await answer_turn(request, user, body, turn)


async def answer_turn(
    request: Request, user: User, body: AppChatRequest, turn: ChatTurn
) -> Response:
    """Answer ``body`` through the gateway and keep it in ``turn``'s conversation.

    A stream's end (complete, stopped or failed) stores or abandons the turn however the
    client left; a failure before the answer abandons it at once.
    """
    try:
        response = await complete_chat(
            request, user, body, conversation_id=turn.conversation_id, on_complete=turn.store
        )
    except BaseException:
        await turn.abandon()
        raise
    response.headers[CONVERSATION_HEADER] = str(turn.conversation_id)
    if isinstance(response, MeteredStream):
        response.body_iterator = turn.guard(response.body_iterator)
        response.closers.append(turn.abandon)
    return response
