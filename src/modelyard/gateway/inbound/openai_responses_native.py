"""The Responses API passed through to upstreams that speak it (OpenAI's own).

The route attaches the client's body to the chat form (:func:`with_native_body`); a target
that speaks the Responses API gets it (:mod:`modelyard.gateway.responses_native`), any
other the chat form. What came back decides how it is answered:

* a Response relayed as it came (:func:`relayed_response`), or the translated one;
* a stream of the upstream's own events (:func:`relayed_sse`), or the translated events.

Relayed answers are rewritten only where the gateway owns the value: the Response's
``id`` (ours, the key of our store: the upstream was told ``store: false``), ``model``
(as the translated path names it), and ``store`` / ``previous_response_id`` as the client
asked. A ``previous_response_id`` never goes upstream: its stored context (ours) is sent
as input items before the new input, so stored responses work alike on both paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from modelyard.errors import ModelyardError
from modelyard.gateway.inbound.openai_responses import ResponsesRequest
from modelyard.gateway.inbound.openai_responses_items import context_input
from modelyard.gateway.inbound.openai_responses_stream import (
    OnFinished,
    ResponsesEventWriter,
    responses_sse,
)
from modelyard.gateway.responses_native import NATIVE_EVENT, NATIVE_RESPONSE
from modelyard.gateway.schemas import ChatCompletionRequest, ChatMessage, ResponsesNative
from modelyard.gateway.sse import encode_named_event
from modelyard.gateway.upstream_errors import UpstreamError

__all__ = ["Rewrite", "relayed_response", "relayed_sse", "rewriter", "with_native_body"]

#: Turns an upstream's Response into the one the client gets.
Rewrite = Callable[[dict[str, Any]], dict[str, Any]]

#: Events after which a relayed stream needs no closing event of ours.
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
#: Events whose Response is final (kept in the store).
_FINISHED = frozenset({"response.completed", "response.incomplete"})


#: Fields OpenAI sends as ``null`` where its published schema wants them left out.
_OMITTED_WHEN_NULL = frozenset({"usage", "user"})


def _unset(key: str, value: Any) -> bool:
    return value is None and key in _OMITTED_WHEN_NULL


def with_native_body(
    chat: ChatCompletionRequest, request: ResponsesRequest, context: list[ChatMessage]
) -> ChatCompletionRequest:
    """``chat`` carrying the client's Responses body, the stored ``context`` in its input."""
    body = request.model_dump(exclude_unset=True)
    for name in ("model", "stream", "store", "previous_response_id"):
        body.pop(name, None)
    if context:
        given = request.input
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given
        body["input"] = [*context_input(context), *items]
    return chat.with_responses_native(ResponsesNative(body=body))


def rewriter(request: ResponsesRequest, *, response_id: str, model: str) -> Rewrite:
    """The rewrite of relayed Responses: our id and model, the client's store settings."""

    def rewrite(response: dict[str, Any]) -> dict[str, Any]:
        kept = {key: value for key, value in response.items() if not _unset(key, value)}
        return {
            **kept,
            "id": response_id,
            "model": model,
            "store": request.store,
            "previous_response_id": request.previous_response_id,
        }

    return rewrite


def relayed_response(answer: dict[str, Any], rewrite: Rewrite) -> dict[str, Any] | None:
    """The upstream's own Response in ``answer``, rewritten; ``None`` for a chat answer."""
    native = answer.get(NATIVE_RESPONSE)
    return rewrite(native) if isinstance(native, dict) else None


async def _native_events(
    chunks: AsyncIterator[dict[str, Any]], rewrite: Rewrite, on_finished: OnFinished | None
) -> AsyncIterator[bytes]:
    sequence, ended = -1, False
    try:
        async for chunk in chunks:
            event = chunk.get(NATIVE_EVENT)
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("response"), dict):
                event = {**event, "response": rewrite(event["response"])}
            kind = str(event.get("type"))
            if kind in _FINISHED and on_finished is not None:
                await on_finished(event["response"])
            ended = ended or kind in _TERMINAL
            if isinstance(event.get("sequence_number"), int):
                sequence = event["sequence_number"]
            yield encode_named_event(kind, event)
    except (UpstreamError, ModelyardError) as error:
        if not ended:
            failure = {
                "type": "error",
                "code": "server_error",
                "message": f"The upstream stream failed: {error}",
                "param": None,
                "sequence_number": sequence + 1,
            }
            yield encode_named_event("error", failure)


async def _chain(
    first: dict[str, Any] | None, failure: BaseException | None, rest: AsyncIterator[Any]
) -> AsyncIterator[dict[str, Any]]:
    if first is not None:
        yield first
    if failure is not None:
        raise failure
    async for chunk in rest:
        yield chunk


async def relayed_sse(
    writer: ResponsesEventWriter,
    chunks: AsyncIterator[dict[str, Any]],
    rewrite: Rewrite,
    *,
    on_finished: OnFinished | None = None,
) -> AsyncIterator[bytes]:
    """The Responses SSE stream: the upstream's own events when its first chunk carries
    one (a target that speaks the Responses API), else the translated events."""
    first: dict[str, Any] | None = None
    failure: BaseException | None = None
    try:
        try:
            first = await anext(aiter(chunks))
        except StopAsyncIteration:
            pass
        except (UpstreamError, ModelyardError) as error:
            failure = error
        chained = _chain(first, failure, chunks)
        if first is not None and isinstance(first.get(NATIVE_EVENT), dict):
            events = _native_events(chained, rewrite, on_finished)
        else:
            events = responses_sse(writer, chained, on_finished=on_finished)
        async for event in events:
            yield event
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
