"""A chat completion answered over HTTP, as JSON or as an OpenAI SSE stream.

Shared by ``/v1/chat/completions``, ``/v2/llm/chat/completions`` and the web chat. With a
:class:`~modelyard.conversations.turns.ChatTurn` the answer is kept in the turn's
conversation (see :meth:`ChatTurn.answer <modelyard.conversations.turns.ChatTurn.answer>`)
and the conversation's id comes back in the ``x-modelyard-conversation-id`` header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request, Response
from pydantic import Field

from modelyard.api.deps import metered_call
from modelyard.api.gateway_responses import gateway_headers, json_response, requested_cache_ttl
from modelyard.api.metered_stream import MeteredStream
from modelyard.api.upstream_detail import friendly_stream_failure
from modelyard.conversations.turns import ChatTurn
from modelyard.db.models import User
from modelyard.gateway.schemas import ChatCompletionRequest
from modelyard.gateway.sse import DONE, encode_event
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.usage.completion import CallDetails
from modelyard.usage.metering import MeteredChunks

__all__ = ["CONVERSATION_HEADER", "AppChatRequest", "complete_chat", "openai_sse"]

#: The response header naming the conversation the turn was stored in.
CONVERSATION_HEADER = "x-modelyard-conversation-id"


class AppChatRequest(ChatCompletionRequest):
    """The OpenAI body plus an optional ``conversation_id`` (the app's chat)."""

    #: The conversation this message continues; a new one is started when omitted.
    conversation_id: int | None = Field(default=None, ge=1)


async def openai_sse(
    chunks: AsyncIterator[dict[str, Any]], *, include_usage: bool, staff: bool = False
) -> AsyncIterator[bytes]:
    """The client's SSE stream; an upstream failure mid-stream ends it with an error event
    (its detail for ``staff`` only, see :mod:`modelyard.api.upstream_detail`)."""
    try:
        async for chunk in chunks:
            if include_usage or chunk.get("choices"):
                yield encode_event(chunk)
        yield DONE
    except UpstreamError as error:
        yield encode_event(
            {
                "error": {
                    "message": friendly_stream_failure(error, staff=staff),
                    "type": "upstream_error",
                    "param": None,
                    "code": f"upstream_{error.category}",
                }
            }
        )
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()


async def complete_chat(
    request: Request, user: User, body: ChatCompletionRequest, *, turn: ChatTurn | None = None
) -> Response:
    """Answer a chat completion, as JSON or as a stream; with ``turn``, kept in its history.

    A stream's end (complete, stopped or failed) stores or abandons the turn however the
    client left; a failure before the answer abandons it at once. A turn's request gets
    its conversation's settings (system prompt, temperature, max tokens) and its
    messages' attachments.
    """
    if turn is not None:
        body = await turn.prepare(body)
    call = await metered_call(
        request,
        user,
        CallDetails(
            endpoint="chat",
            model=body.model,
            messages=body.messages,
            conversation_id=turn.conversation_id if turn else None,
            on_complete=turn.store if turn else None,
        ),
    )

    async def answering() -> dict[str, Any] | MeteredChunks:
        if body.stream:
            return await call.stream(body)
        return await call.complete(body, cache_ttl=requested_cache_ttl(request))

    answer = await (turn.answer(answering) if turn else answering())
    response: Response
    if isinstance(answer, MeteredChunks):
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        sse = openai_sse(answer, include_usage=include_usage, staff=user.is_staff)
        response = MeteredStream(
            turn.guard(sse) if turn else sse,
            chunks=answer,
            media_type="text/event-stream",
            headers={**gateway_headers(request, call.served), "cache-control": "no-cache"},
        )
    else:
        response = json_response(answer, gateway_headers(request, call.served))
    if turn is not None:
        response.headers[CONVERSATION_HEADER] = str(turn.conversation_id)
    return response
