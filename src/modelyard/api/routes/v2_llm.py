"""The app's own chat route: the OpenAI body plus an optional ``conversation_id``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import Field

from modelyard.api.deps import SubscribedUser
from modelyard.api.routes.v1_openai import complete_chat
from modelyard.gateway.schemas import ChatCompletionRequest

router = APIRouter(prefix="/v2/llm", tags=["chat"])


class AppChatRequest(ChatCompletionRequest):
    #: The conversation this message continues; a new one is started when omitted.
    conversation_id: int | None = Field(default=None, ge=1)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: AppChatRequest, request: Request, user: SubscribedUser
) -> Response:
    """Chat for the web app (history is kept per conversation)."""
    return await complete_chat(request, user, body)
