"""The app's own chat route: the OpenAI body plus an optional ``conversation_id``.

Each turn is kept in the user's history (see :mod:`modelyard.conversations.turns`): the
conversation's id comes back in the ``x-modelyard-conversation-id`` header, JSON and
stream alike. The new user message and the answer are written together once the answer
is complete — or, when the client leaves or stops a streamed answer, with what had
arrived, marked ``stopped``. An upstream failure stores nothing, and a conversation this
request created is removed again when it stays empty. The web chat's replacing route
answers the same way (:func:`~modelyard.api.chat_completion.complete_chat` with a turn).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.chat_completion import AppChatRequest, complete_chat
from modelyard.api.deps import SubscribedUser, app_state
from modelyard.conversations.turns import ChatTurn

__all__ = ["router"]

router = APIRouter(prefix="/v2/llm", tags=["chat"])


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
    return await complete_chat(request, user, body, turn=turn)
