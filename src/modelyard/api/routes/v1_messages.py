"""The Anthropic Messages API (``POST /v1/messages``), in front of every provider.

The request is translated to the gateway's canonical (OpenAI) request and the answer back;
the official ``anthropic`` SDK works against it with a personal API token as its key
(sent as ``x-api-key``). Errors keep the service's JSON shape; the SDK maps them by status.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from modelyard.api.deps import SubscribedUser, app_state
from modelyard.api.routes.v1_openai import gateway_headers, json_response, requested_cache_ttl
from modelyard.gateway.anthropic_frontend import MessagesRequest, to_chat_request
from modelyard.gateway.anthropic_replies import anthropic_sse, to_message

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"])


@router.post("/messages", response_model=None)
async def messages(body: MessagesRequest, request: Request, user: SubscribedUser) -> Response:
    """Anthropic's Messages API, as JSON or as a stream of named events."""
    chat = to_chat_request(body)
    gateway = app_state(request).gateway
    stops = chat.stop_list()
    if not chat.stream:
        answer, served = await gateway.chat(user, chat, cache_ttl=requested_cache_ttl(request))
        gateway.account(served, answer.get("usage"), "ok")
        message = to_message(answer, model=served.model, stops=stops)
        return json_response(message, gateway_headers(request, served))
    first, rest, served = await gateway.stream(user, chat)
    return StreamingResponse(
        anthropic_sse(first, gateway.metered(None, rest, served), model=served.model, stops=stops),
        media_type="text/event-stream",
        headers={**gateway_headers(request, served), "cache-control": "no-cache"},
    )
