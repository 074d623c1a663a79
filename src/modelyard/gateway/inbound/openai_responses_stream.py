"""The Responses API's event stream, built from the gateway's chat completion chunks.

:class:`ResponsesEventWriter` turns chunks into events, every one numbered
(``sequence_number``)::

    response.created, response.in_progress,
    (response.output_item.added, response.content_part.added,
     response.output_text.delta*, response.output_text.done,
     response.content_part.done, response.output_item.done
     | response.output_item.added, response.function_call_arguments.delta*,
     response.function_call_arguments.done, response.output_item.done)*,
    response.completed | response.incomplete

A failure after the stream started ends it with ``response.failed``. :func:`responses_sse`
writes them as SSE (``event:`` + ``data:``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from modelyard.errors import ModelyardError
from modelyard.gateway.inbound.chunk_reader import ChunkReader
from modelyard.gateway.inbound.openai_responses import ResponsesRequest
from modelyard.gateway.inbound.openai_responses_output import (
    INCOMPLETE_REASONS,
    arguments_text,
    finish_response,
    new_item_id,
    response_shell,
    response_usage,
    text_part,
)
from modelyard.gateway.sse import encode_named_event
from modelyard.gateway.upstream_errors import UpstreamError

__all__ = ["OnFinished", "ResponsesEventWriter", "responses_sse"]


class ResponsesEventWriter(ChunkReader):
    """Turns chat chunks into Responses stream events, one output item open at a time."""

    def __init__(
        self, request: ResponsesRequest, *, response_id: str, created_at: int, model: str
    ) -> None:
        self.response = response_shell(
            request, response_id=response_id, created_at=created_at, model=model
        )
        self.sequence = 0
        self.item: dict[str, Any] | None = None  # the open output item
        self.tool_index: Any = None  # the chunks' index of the open tool call
        super().__init__()

    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return encode_named_event(kind, event)

    def _snapshot(self) -> dict[str, Any]:
        return {**self.response, "output": list(self.response["output"])}

    def start(self) -> list[bytes]:
        """``response.created`` and ``response.in_progress``."""
        return [
            self._event("response.created", response=self._snapshot()),
            self._event("response.in_progress", response=self._snapshot()),
        ]

    @property
    def _index(self) -> int:
        return len(self.response["output"])

    def _open(self, item: dict[str, Any]) -> list[bytes]:
        events = self._close("completed")
        self.item = item
        return [
            *events,
            self._event("response.output_item.added", output_index=self._index, item=dict(item)),
        ]

    def _close(self, status: str) -> list[bytes]:
        item, self.item = self.item, None
        if item is None:
            return []
        item["status"] = status
        place = {"item_id": item["id"], "output_index": self._index}
        events: list[bytes] = []
        if item["type"] == "message":
            part = item["content"][0]
            events += [
                self._event(
                    "response.output_text.done",
                    **place,
                    content_index=0,
                    text=part["text"],
                    logprobs=[],
                ),
                self._event("response.content_part.done", **place, content_index=0, part=part),
            ]
        else:
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    **place,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        events.append(self._event("response.output_item.done", output_index=self._index, item=item))
        self.response["output"].append(item)
        return events

    def _text(self, text: str) -> list[bytes]:
        events: list[bytes] = []
        if self.item is None or self.item["type"] != "message":
            item: dict[str, Any] = {
                "id": new_item_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            events = self._open(item)
            part = text_part("")
            item["content"].append(part)
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=self._index,
                    content_index=0,
                    part=dict(part),
                )
            )
        assert self.item is not None
        self.item["content"][0]["text"] += text
        place = {"item_id": self.item["id"], "output_index": self._index, "content_index": 0}
        return [
            *events,
            self._event("response.output_text.delta", **place, delta=text, logprobs=[]),
        ]

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        function = call.get("function") or {}
        open_call = self.item is not None and self.item["type"] == "function_call"
        call_id = call.get("id")
        if call_id and not (
            open_call and self.item is not None and self.item["call_id"] == call_id
        ):
            item = {
                "id": new_item_id("fc"),
                "type": "function_call",
                "call_id": call_id,
                "name": str(function.get("name") or ""),
                "arguments": "",
                "status": "in_progress",
            }
            events = self._open(item)
            self.tool_index = call.get("index")
        elif not open_call or call.get("index", self.tool_index) != self.tool_index:
            raise UpstreamError("protocol", "a tool call delta does not follow its tool call")
        arguments = arguments_text(function.get("arguments"))
        if arguments:
            assert self.item is not None
            self.item["arguments"] += arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=self.item["id"],
                    output_index=self._index,
                    delta=arguments,
                )
            )
        return events

    def end(self) -> list[bytes]:
        """Close the open item, then ``response.completed`` (or ``response.incomplete``)."""
        incomplete = self.finish.get("finish_reason") in INCOMPLETE_REASONS
        events = self._close("incomplete" if incomplete else "completed")
        finish_response(self.response, self.finish.get("finish_reason"), self.chunk_usage)
        kind = "response.incomplete" if incomplete else "response.completed"
        return [*events, self._event(kind, response=self._snapshot())]

    def fail(self, message: str) -> list[bytes]:
        """``response.failed``: the stream broke after it started."""
        self.item = None
        self.response["status"] = "failed"
        self.response["error"] = {"code": "server_error", "message": message}
        if self.chunk_usage:
            self.response["usage"] = response_usage(self.chunk_usage)
        return [self._event("response.failed", response=self._snapshot())]


#: Called with a streamed Response once it finished (to store it), before its last event.
OnFinished = Callable[[dict[str, Any]], Awaitable[None]]


async def responses_sse(
    writer: ResponsesEventWriter,
    chunks: AsyncIterator[dict[str, Any]],
    *,
    on_finished: OnFinished | None = None,
) -> AsyncIterator[bytes]:
    """The Responses SSE stream for a chat chunk stream."""
    try:
        for event in writer.start():
            yield event
        async for chunk in chunks:
            for event in writer.feed(chunk):
                yield event
        events = writer.end()
        if on_finished is not None:
            await on_finished(writer.response)
        for event in events:
            yield event
    except (UpstreamError, ModelyardError) as error:
        for event in writer.fail(f"The upstream stream failed: {error}"):
            yield event
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
