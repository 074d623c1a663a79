"""The Anthropic Messages API (``POST /v1/messages``), in front of every provider.

The request is translated to the gateway's canonical (OpenAI) request and the answer back;
the official ``anthropic`` SDK works against it with a personal API token as its key
(sent as ``x-api-key``). Errors keep the service's JSON shape; the SDK maps them by status.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.deps import SubscribedUser, metered_call
from modelyard.api.gateway_responses import gateway_headers, json_response, requested_cache_ttl
from modelyard.api.metered_stream import MeteredStream
from modelyard.gateway.inbound.anthropic_messages import (
    MessagesRequest,
    anthropic_sse,
    to_chat_request,
    to_message,
)
from modelyard.usage.completion import CallDetails

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"])


@router.post("/messages", response_model=None)
async def messages(body: MessagesRequest, request: Request, user: SubscribedUser) -> Response:
    """Anthropic's Messages API, as JSON or as a stream of named events."""
    chat = to_chat_request(body)
    stops = chat.stop_list()
    call = await metered_call(
        request,
        user,
        CallDetails(endpoint="messages", model=chat.model, messages=chat.messages),
    )
    if not chat.stream:
        answer = await call.complete(chat, cache_ttl=requested_cache_ttl(request))
        headers = gateway_headers(request, call.served)
        return json_response(
            to_message(answer, model=headers["x-modelyard-model"], stops=stops), headers
        )
    chunks = await call.stream(chat)
    headers = gateway_headers(request, call.served)
    return MeteredStream(
        anthropic_sse(None, chunks, model=headers["x-modelyard-model"], stops=stops),
        chunks=chunks,
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )
