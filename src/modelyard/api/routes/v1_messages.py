"""The Anthropic Messages API (``POST /v1/messages``), in front of every provider.

The request is translated to the gateway's canonical (OpenAI) request and the answer back;
the official ``anthropic`` SDK works against it with a personal API token as its key
(sent as ``x-api-key``). Errors keep the service's JSON shape; the SDK maps them by status.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from modelyard.api.deps import SubscribedUser, app_state
from modelyard.api.metering import Metering, answer_text
from modelyard.api.routes.v1_openai import gateway_headers, json_response, requested_cache_ttl
from modelyard.errors import ModelyardError
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
    meter = Metering(request, user, endpoint="messages", model=chat.model, messages=chat.messages)
    await meter.admit(meter.prompt_tokens() + (chat.output_limit() or 0))
    try:
        if not chat.stream:
            answer, meter.served = await gateway.chat(
                user, chat, cache_ttl=requested_cache_ttl(request)
            )
        else:
            first, rest, meter.served = await gateway.stream(user, chat)
    except ModelyardError as error:
        await meter.fail(error)
        raise
    headers = gateway_headers(request, meter.served)
    model = meter.served.model
    if not chat.stream:
        await meter.succeed(usage=answer.get("usage"), content=answer_text(answer))
        return json_response(to_message(answer, model=model, stops=stops), headers)
    return StreamingResponse(
        anthropic_sse(None, meter.stream(first, rest), model=model, stops=stops),
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )
