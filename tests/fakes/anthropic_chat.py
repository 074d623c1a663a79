"""The fake Anthropic with ``POST /v1/messages`` (JSON and SSE), in the real wire format.

It validates like Anthropic (``max_tokens`` required, no unknown fields, roles alternating
from ``user``, ``temperature`` ≤ 1, tool results matching the tool calls before them) and
answers deterministically:

* ``"Echo: <last user text>"`` (a tool result's text counts as user text), cut at the first
  stop sequence (``stop_sequence``) and at ``max_tokens`` words (``max_tokens``);
* with tools, when the last user text mentions "weather" (or ``tool_choice`` forces a
  tool): a text block and a ``tool_use`` of the first (or the chosen) tool with
  ``{"city": "Paris"}`` — and a second call for Tokyo when the text says "two cities",
  unless parallel tool use is disabled.

With ``thinking`` enabled the reply starts with a ``thinking`` block (``"Thinking about: <last
user text>"``, signed ``FAKE_SIGNATURE``); thinking blocks sent back in the history must
keep their signature. ``POST /v1/messages/count_tokens`` answers the words of the prompt
plus :data:`COUNT_OVERHEAD` (a number no estimate would find).

Usage counts words; ``cache_read_tokens`` adds cached input tokens. Streams follow the real
event order (``message_start``, ``content_block_start``, ``ping``, deltas,
``content_block_stop``, ``message_delta``, ``message_stop``), each as ``event:`` + ``data:``
lines, with text split into ``stream_chunks`` pieces (thinking as ``thinking_delta``s then
one ``signature_delta``). Faults: the base class's forced
status (529 answers ``overloaded_error``) and delay, ``error_after`` (an ``error`` event
after that many deltas), ``error_first`` (an ``error`` event before anything else) and
``end_after`` (the stream ends cleanly after that many deltas, without ``message_stop``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.providers import FakeAnthropic

__all__ = ["COUNT_OVERHEAD", "FAKE_SIGNATURE", "ChatAnthropic", "message_text"]

_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "service_tier",
        "cache_control",
        "context_management",
        "container",
        "mcp_servers",
        "output_format",
        "output_config",
    }
)
#: What ``POST /v1/messages/count_tokens`` takes.
_COUNT_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "context_management"}
)
_MESSAGE_ID = "msg_01FakeAnthropic"
#: The signature of the fake's thinking blocks.
FAKE_SIGNATURE = "EqQBCkYIBRgCKkBfakesignature"
#: What the fake's token count adds to the prompt's words.
COUNT_OVERHEAD = 17


class Invalid(Exception):
    """A request Anthropic would refuse with a 400 ``invalid_request_error``."""


def message_text(content: Any) -> str:
    """The text of a message's content: text blocks and tool results' text."""
    if isinstance(content, str):
        return content
    texts = []
    for block in content or []:
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            texts.append(message_text(block.get("content", "")))
    return " ".join(texts)


def _words(text: str) -> int:
    return len(text.split())


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    pending: set[str] = set()
    for position, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise Invalid(f"messages.{position}.role: Input should be 'user' or 'assistant'")
        if position == 0 and role != "user":
            raise Invalid('messages: first message must use the "user" role')
        if position and messages[position - 1].get("role") == role:
            raise Invalid(
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks:
            raise Invalid(f"messages.{position}: all messages must have non-empty content")
        results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if pending - results:
            raise Invalid(
                f"messages.{position}: `tool_use` ids were found without `tool_result` "
                f"blocks immediately after: {', '.join(sorted(pending - results))}"
            )
        if results - pending:
            raise Invalid(
                f"messages.{position}: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {', '.join(sorted(map(str, results - pending)))}"
            )
        first_other = next(
            (i for i, b in enumerate(blocks) if b.get("type") != "tool_result"), len(blocks)
        )
        if any(b.get("type") == "tool_result" for b in blocks[first_other:]):
            raise Invalid(
                f"messages.{position}: `tool_result` blocks must come first in the content, "
                "before any other block"
            )
        for index, block in enumerate(blocks):
            if block.get("type") == "text" and not block.get("text"):
                raise Invalid(
                    f"messages.{position}.content.{index}.text: text content blocks must be "
                    "non-empty"
                )
            if block.get("type") == "thinking" and not block.get("signature"):
                raise Invalid(f"messages.{position}.content.{index}.signature: Field required")
        pending = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    if pending:
        raise Invalid("messages: the last message has `tool_use` blocks without results")


def validate(body: Any) -> None:
    """Raise :class:`Invalid` with Anthropic's message for a request it would refuse."""
    if not isinstance(body, dict):
        raise Invalid("body: Input should be an object")
    extra = sorted(set(body) - _FIELDS)
    if extra:
        raise Invalid(f"{extra[0]}: Extra inputs are not permitted")
    if "max_tokens" not in body:
        raise Invalid("max_tokens: Field required")
    if not isinstance(body.get("system", ""), str | list):
        raise Invalid("system: Input should be a valid string or list")
    if not 0 <= body.get("temperature", 1) <= 1:
        raise Invalid("temperature: Input should be less than or equal to 1")
    if "tool_choice" in body and not body.get("tools"):
        raise Invalid("tool_choice: tool_choice may only be specified while providing tools")
    for index, tool in enumerate(body.get("tools") or []):
        if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
            raise Invalid(f"tools.{index}: a tool needs a name and an input_schema object")
    thinking = body.get("thinking") or {"type": "disabled"}
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise Invalid("thinking.enabled.budget_tokens: Input should be at least 1024")
        if "max_tokens" in body and budget >= body["max_tokens"]:
            raise Invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
        if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            raise Invalid("Thinking may not be enabled when tool_choice forces tool use.")
        assistant = [m for m in body.get("messages") or [] if m.get("role") == "assistant"]
        last = assistant[-1]["content"] if assistant else []
        calls = isinstance(last, list) and any(b.get("type") == "tool_use" for b in last)
        if calls and last[0].get("type") not in ("thinking", "redacted_thinking"):
            raise Invalid(
                "messages: Expected `thinking` or `redacted_thinking`, but found `tool_use`. "
                "When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block."
            )
    _validate_messages(body.get("messages"))


def thinking_on(body: dict[str, Any]) -> bool:
    return (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")


def _tool_uses(body: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """The tool calls the fake makes for this request (none without tools)."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    last = body["messages"][-1]["content"]
    answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
    forced = choice["type"] in ("any", "tool")
    if not tools or choice["type"] == "none" or answered:
        return []
    if not forced and "weather" not in text.lower():
        return []
    name = choice["name"] if choice["type"] == "tool" else tools[0]["name"]
    cities = ["Paris", "Tokyo"] if "two cities" in text else ["Paris"]
    if choice.get("disable_parallel_tool_use"):
        cities = cities[:1]
    return [
        {"type": "tool_use", "id": f"toolu_fake_{n}", "name": name, "input": {"city": city}}
        for n, city in enumerate(cities, start=1)
    ]


def answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
    """The content blocks, stop reason and stop sequence of the fake's reply."""
    text = message_text(body["messages"][-1]["content"])
    thought = [
        {"type": "thinking", "thinking": f"Thinking about: {text}", "signature": FAKE_SIGNATURE}
    ]
    blocks, reason, sequence = _reply(body, text)
    return [*thought, *blocks] if thinking_on(body) else blocks, reason, sequence


def _reply(body: dict[str, Any], text: str) -> tuple[list[dict[str, Any]], str, str | None]:
    calls = _tool_uses(body, text)
    if calls:
        return [{"type": "text", "text": "Let me check."}, *calls], "tool_use", None
    reply, reason, sequence = f"Echo: {text}", "end_turn", None
    cuts = [(reply.find(s), s) for s in body.get("stop_sequences") or [] if s in reply]
    if cuts:
        position, sequence = min(cuts)
        reply, reason = reply[:position], "stop_sequence"
    words = reply.split(" ")
    if len(words) > body["max_tokens"]:
        reply, reason = " ".join(words[: body["max_tokens"]]), "max_tokens"
    return [{"type": "text", "text": reply}], reason, sequence


class ChatAnthropic(FakeAnthropic):
    """:class:`FakeAnthropic` with ``POST /v1/messages``."""

    #: Models served besides Anthropic's dated ones (the names the tests ask for).
    extra_models = ("claude-sonnet-4-5", "claude-x")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("models", [*self.default_models, *self.extra_models])
        super().__init__(**kwargs)
        self.stream_chunks = 3
        self.error_after: int | None = None
        self.error_first = False
        self.end_after: int | None = None
        self.cache_read_tokens = 0

    def routes(self) -> list[BaseRoute]:
        return [
            *super().routes(),
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
        ]

    @property
    def last_body(self) -> Any:
        """The JSON body of the last request received."""
        return self.last_request.json()

    def prompt_words(self, body: dict[str, Any]) -> int:
        system = body.get("system", "")
        prompt = _words(system if isinstance(system, str) else message_text(system))
        return prompt + sum(_words(message_text(m["content"])) for m in body["messages"])

    def usage(self, body: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, int]:
        prompt = self.prompt_words(body)
        output = sum(
            _words(b.get("text", "") or b.get("thinking", "")) + 5 * (b["type"] == "tool_use")
            for b in blocks
        )
        return {
            "input_tokens": prompt,
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.cache_read_tokens,
        }

    async def messages(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        body = await request.json()
        try:
            validate(body)
        except Invalid as invalid:
            return self.error(400, str(invalid))
        if body["model"] not in self.models:
            return self.error(404, f"model: {body['model']}")
        blocks, reason, sequence = answer(body)
        if body.get("stream"):
            events = self._stream(body, blocks, reason, sequence)
            return StreamingResponse(events, media_type="text/event-stream")
        return JSONResponse(
            {
                "id": _MESSAGE_ID,
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": blocks,
                "stop_reason": reason,
                "stop_sequence": sequence,
                "usage": self.usage(body, blocks),
            },
            headers={"request-id": "req_fake"},
        )

    async def count_tokens(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        body = await request.json()
        extra = sorted(set(body) - _COUNT_FIELDS)
        if extra:
            return self.error(400, f"{extra[0]}: Extra inputs are not permitted")
        try:
            validate({**body, "max_tokens": 1_000_000})
        except Invalid as invalid:
            return self.error(400, str(invalid))
        if body["model"] not in self.models:
            return self.error(404, f"model: {body['model']}")
        return JSONResponse({"input_tokens": self.prompt_words(body) + COUNT_OVERHEAD})

    def _pieces(self, text: str) -> list[str]:
        size = max(1, -(-len(text) // self.stream_chunks))
        return [text[i : i + size] for i in range(0, len(text), size)]

    def _deltas(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        if block["type"] == "text":
            delta = [{"type": "text_delta", "text": p} for p in self._pieces(block["text"])]
        elif block["type"] == "thinking":
            pieces = self._pieces(block["thinking"])
            delta = [{"type": "thinking_delta", "thinking": p} for p in pieces]
            delta.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            pieces = ["", *self._pieces(json.dumps(block["input"]))]
            delta = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        return [{"type": "content_block_delta", "index": index, "delta": d} for d in delta]

    async def _stream(
        self,
        body: dict[str, Any],
        blocks: list[dict[str, Any]],
        reason: str,
        sequence: str | None,
    ) -> AsyncIterator[bytes]:
        def event(data: dict[str, Any]) -> bytes:
            return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()

        overloaded = {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        if self.error_first:
            yield event(overloaded)
            return
        usage = self.usage(body, blocks)
        start = {
            "id": _MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        yield event({"type": "message_start", "message": start})
        sent = 0
        for index, block in enumerate(blocks):
            opening = {
                "tool_use": {**block, "input": {}},
                "thinking": {**block, "thinking": "", "signature": ""},
            }.get(block["type"], {**block, "text": ""})
            yield event({"type": "content_block_start", "index": index, "content_block": opening})
            if index == 0:
                yield event({"type": "ping"})
            for delta in self._deltas(index, block):
                if self.error_after is not None and sent >= self.error_after:
                    yield event(overloaded)
                    return
                if self.end_after is not None and sent >= self.end_after:
                    return
                yield event(delta)
                sent += 1
            yield event({"type": "content_block_stop", "index": index})
        yield event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": {"output_tokens": usage["output_tokens"]},
            }
        )
        yield event({"type": "message_stop"})
