"""The Anthropic Messages API (``POST /v1/messages``, ``POST /v1/messages/count_tokens``),
in front of every provider.

The request keeps its Anthropic-native parts beside its chat form, and each target takes
what it can (:mod:`modelyard.gateway.anthropic_native`): an Anthropic target gets the
client's body and ``anthropic-beta`` header as they are, and its answer comes back as it
was; other targets get the chat form, answered in the Messages shape. The official
``anthropic`` SDK works against it with a personal API token as its key (``x-api-key``);
errors are in Anthropic's shape (:mod:`modelyard.api.anthropic_errors`).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from modelyard.api.deps import SubscribedUser, app_state, metered_call
from modelyard.api.gateway_responses import gateway_headers, json_response, requested_cache_ttl
from modelyard.api.metered_stream import MeteredStream
from modelyard.gateway.inbound.anthropic_messages import (
    CountTokensRequest,
    MessagesRequest,
    anthropic_sse,
    to_chat_request,
    to_message,
)
from modelyard.usage.completion import CallDetails
from modelyard.usage.tokens import count_message_tokens
from modelyard.usage.tokens import count_tokens as count_tokens_of

__all__ = ["ESTIMATED_HEADER", "router"]

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"])

#: ``true`` on a token count the gateway estimated (the provider cannot count).
ESTIMATED_HEADER = "x-modelyard-estimated"


@router.post("/messages", response_model=None)
async def messages(body: MessagesRequest, request: Request, user: SubscribedUser) -> Response:
    """Anthropic's Messages API, as JSON or as a stream of named events."""
    chat = to_chat_request(body, beta=request.headers.get("anthropic-beta"))
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


@router.post("/messages/count_tokens", response_model=None)
async def count_tokens(
    body: CountTokensRequest, request: Request, user: SubscribedUser
) -> Response:
    """The request's input tokens: the provider's count when the model's first target is
    Anthropic, else the gateway's estimate (``x-modelyard-estimated: true``). Nothing is
    generated, so no usage is recorded."""
    chat = to_chat_request(body, beta=request.headers.get("anthropic-beta"))
    tokens, served = await app_state(request).gateway.count_tokens(user, chat)
    if tokens is None or served is None:
        estimate = count_message_tokens(chat.model, chat.messages)
        if chat.tools:  # the tools' definitions are part of the prompt too
            estimate += count_tokens_of(chat.model, orjson.dumps(chat.tools).decode())
        return json_response({"input_tokens": estimate}, {ESTIMATED_HEADER: "true"})
    return json_response({"input_tokens": tokens}, gateway_headers(request, served))
