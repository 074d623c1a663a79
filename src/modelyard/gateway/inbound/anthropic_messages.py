"""The Anthropic Messages API in front of the gateway (clients calling ``POST /v1/messages``).

The inbound direction (the gateway calling Anthropic is
:mod:`modelyard.gateway.adapters.anthropic`). The gateway's canonical format is OpenAI's:

* :func:`to_chat_request` turns a Messages API request into a
  :class:`~modelyard.gateway.schemas.ChatCompletionRequest` carrying the client's own
  request (:class:`~modelyard.gateway.schemas.AnthropicNative`), for Anthropic targets;
  what the chat form cannot express (``top_k``, server tools, documents, …) is noted
  there and refused only by other targets (:mod:`modelyard.gateway.anthropic_native`);
  ``thinking`` becomes their ``reasoning_effort``, thinking blocks are left out. Unknown
  parameters and malformed requests are a 400 for every target.
* :func:`to_message` turns the completion into a ``message`` (an Anthropic target's own
  answer as it came); :func:`anthropic_sse` turns a stream of completion chunks into the
  Messages API's events (an Anthropic target's own events relayed), in their exact order::

      message_start, ping, (content_block_start, content_block_delta*, content_block_stop)*,
      message_delta, message_stop

  A failure after the stream started ends it with an ``error`` event.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.errors import BadGatewayError, BadRequestError, ModelyardError
from modelyard.gateway.anthropic_native import NATIVE_EVENT, NATIVE_MESSAGE, effort_for_budget
from modelyard.gateway.inbound.chunk_reader import ChunkReader, content_text
from modelyard.gateway.schemas import (
    AnthropicNative,
    ChatCompletionRequest,
    ChatMessage,
    StreamOptions,
)
from modelyard.gateway.sse import encode_named_event
from modelyard.gateway.upstream_errors import UpstreamError

__all__ = [
    "AnthropicMessage",
    "CountTokensRequest",
    "MessagesEventWriter",
    "MessagesRequest",
    "anthropic_sse",
    "error_type",
    "stop_reason",
    "to_chat_request",
    "to_message",
    "usage",
]


# -- the request ------------------------------------------------------------------------

#: Messages API parameters sent to Anthropic targets as they are, with no equivalent for
#: other targets (a 400 naming them there).
_NATIVE_ONLY = frozenset(
    {
        "container",
        "context_management",
        "diagnostics",
        "inference_geo",
        "mcp_servers",
        "output_config",
        "output_format",
        "service_tier",
        "speed",
        "user_profile_id",
        "workspace_id",
    }
)

#: Block types of an assistant's history that other targets do without.
_THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


class AnthropicMessage(BaseModel):
    """One turn of the conversation; blocks are checked during translation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(BaseModel):
    """The body of ``POST /v1/messages`` (unknown fields are refused by the translation)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1, le=10_000_000)
    system: str | list[dict[str, Any]] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    #: A prompt-caching hint, like the blocks' ``cache_control``: Anthropic's alone.
    cache_control: dict[str, Any] | None = None


class CountTokensRequest(MessagesRequest):
    """The body of ``POST /v1/messages/count_tokens``: a Messages request without
    ``max_tokens`` or ``stream``."""

    max_tokens: int = Field(default=1, ge=1, le=10_000_000)


def _refuse(message: str, param: str, code: str = "unsupported_parameter") -> BadRequestError:
    return BadRequestError(message, param=param, code=code)


class _Untranslatable:
    """What other targets than Anthropic cannot take, by parameter (the first reason kept)."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def note(self, error: BadRequestError, where: str) -> None:
        self.reasons.setdefault(error.param or where, error.message)


def _check_keys(block: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(block) - allowed - {"type", "cache_control"})
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise _refuse(f"Unknown field(s) {names} in {where}.", f"{where}.{unknown[0]}")


def _block_text(block: dict[str, Any], where: str) -> str:
    """The text of one text block."""
    if block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise _refuse(
            f"{where} must be a text block; only text is supported here.", where, "invalid_value"
        )
    _check_keys(block, {"text", "citations"}, where)
    text: str = block["text"]
    return text


def _text_of(blocks: str | list[dict[str, Any]], where: str) -> str:
    """The text of a string or of a list of text blocks (joined by blank lines)."""
    if isinstance(blocks, str):
        return blocks
    return "\n\n".join(_block_text(block, f"{where}.{i}") for i, block in enumerate(blocks))


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    _check_keys(block, {"source"}, where)
    source = block.get("source")
    if not isinstance(source, dict):
        raise _refuse(f"{where}.source must be an object.", f"{where}.source", "invalid_value")
    if source.get("type") == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise _refuse(
                f"{where}.source needs 'media_type' and 'data'.", f"{where}.source", "invalid_value"
            )
        url = f"data:{media};base64,{data}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise _refuse(
            f"{where}.source: only 'base64' and 'url' image sources are supported.",
            f"{where}.source",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_message(block: dict[str, Any], where: str) -> ChatMessage:
    _check_keys(block, {"tool_use_id", "content", "is_error"}, where)
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise _refuse(f"{where}.tool_use_id is required.", f"{where}.tool_use_id", "invalid_value")
    text = _text_of(block.get("content") or "", f"{where}.content")
    if block.get("is_error"):
        text = f"Error: {text}"
    return ChatMessage(role="tool", tool_call_id=call_id, content=text)


def _unsupported_block(kind: Any, where: str) -> BadRequestError:
    return _refuse(f"Content blocks of type {kind!r} ({where}) are Anthropic's own.", where)


def _user_messages(
    blocks: list[dict[str, Any]], where: str, untranslatable: _Untranslatable
) -> list[ChatMessage]:
    """Tool results become ``tool`` messages; runs of other blocks become user messages."""
    result: list[ChatMessage] = []
    parts: list[dict[str, Any]] = []

    def flush() -> None:
        if not parts:
            return
        if len(parts) == 1 and parts[0]["type"] == "text":
            result.append(ChatMessage(role="user", content=parts[0]["text"]))
        else:
            result.append(ChatMessage(role="user", content=list(parts)))
        parts.clear()

    for position, block in enumerate(blocks):
        here = f"{where}.{position}"
        kind = block.get("type")
        try:
            if kind == "text":
                parts.append({"type": "text", "text": _block_text(block, here)})
            elif kind == "image":
                parts.append(_image_part(block, here))
            elif kind == "tool_result":
                message = _tool_message(block, here)
                flush()
                result.append(message)
            else:
                raise _unsupported_block(kind, here)
        except BadRequestError as error:
            untranslatable.note(error, here)
    flush()
    return result


def _assistant_message(
    blocks: list[dict[str, Any]], where: str, untranslatable: _Untranslatable
) -> ChatMessage | None:
    """The assistant's turn; thinking blocks are left out (``None``: nothing else was)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for position, block in enumerate(blocks):
        here = f"{where}.{position}"
        kind = block.get("type")
        try:
            if kind == "text":
                texts.append(_block_text(block, here))
            elif kind == "tool_use":
                _check_keys(block, {"id", "name", "input"}, here)
                if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                    raise _refuse(f"{here} needs an 'id' and a 'name'.", here, "invalid_value")
                arguments = orjson.dumps(block.get("input") or {}).decode()
                calls.append(
                    {
                        "id": block["id"],
                        "type": "function",
                        "function": {"name": block["name"], "arguments": arguments},
                    }
                )
            elif kind not in _THINKING_BLOCKS:
                raise _unsupported_block(kind, here)
        except BadRequestError as error:
            untranslatable.note(error, here)
    if not texts and not calls:
        return None
    return ChatMessage(
        role="assistant", content="".join(texts) if texts else None, tool_calls=calls or None
    )


def _system_message(system: str | list[dict[str, Any]], untranslatable: _Untranslatable) -> str:
    try:
        return _text_of(system, "system")
    except BadRequestError as error:
        untranslatable.note(error, "system")
        return ""


def _messages(request: MessagesRequest, untranslatable: _Untranslatable) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    system = _system_message(request.system, untranslatable) if request.system else ""
    if system:
        messages.append(ChatMessage(role="system", content=system))
    for position, turn in enumerate(request.messages):
        where = f"messages.{position}.content"
        if isinstance(turn.content, str):
            messages.append(ChatMessage(role=turn.role, content=turn.content))
        elif not turn.content:
            raise _refuse(f"{where} must not be an empty list.", where, "invalid_value")
        elif turn.role == "user":
            messages.extend(_user_messages(turn.content, where, untranslatable))
        else:
            answer = _assistant_message(turn.content, where, untranslatable)
            if answer is not None:
                messages.append(answer)
    if not messages:  # only blocks no other target takes; the chat form is never sent
        messages.append(ChatMessage(role="user", content=""))
    return messages


def _tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if tool.get("type") not in (None, "custom"):
        raise _refuse(
            f"{where}: Anthropic server tools ({tool['type']!r}) run at Anthropic only; "
            "declare client tools with 'name', 'description' and 'input_schema'.",
            f"{where}.type",
        )
    _check_keys(tool, {"name", "description", "input_schema"}, where)
    if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
        raise _refuse(f"{where} needs a 'name' and an 'input_schema'.", where, "invalid_value")
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tools(tools: list[dict[str, Any]], untranslatable: _Untranslatable) -> list[dict[str, Any]]:
    translated = []
    for position, tool in enumerate(tools):
        try:
            translated.append(_tool(tool, f"tools.{position}"))
        except BadRequestError as error:
            untranslatable.note(error, f"tools.{position}")
    return translated


def _tool_choice(choice: dict[str, Any]) -> tuple[str | dict[str, Any], bool]:
    """OpenAI's ``tool_choice``, and whether parallel tool calls were disabled."""
    kind = choice.get("type")
    _check_keys(choice, {"name", "disable_parallel_tool_use"}, "tool_choice")
    parallel_off = bool(choice.get("disable_parallel_tool_use"))
    if kind in ("auto", "none"):
        return str(kind), parallel_off
    if kind == "any":
        return "required", parallel_off
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}, parallel_off
    raise _refuse(
        "tool_choice must be {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', 'name': …}.",
        "tool_choice",
        "invalid_value",
    )


def _reasoning_effort(thinking: dict[str, Any] | None, max_tokens: int | None) -> str | None:
    """OpenAI's ``reasoning_effort`` for Anthropic's ``thinking`` (checked as Anthropic does)."""
    kind = (thinking or {}).get("type")
    if thinking is None or kind == "disabled":
        return None
    if kind == "adaptive":
        return "medium"
    budget = thinking.get("budget_tokens")
    if kind != "enabled" or not isinstance(budget, int) or isinstance(budget, bool):
        raise _refuse(
            "thinking must be {'type': 'enabled', 'budget_tokens': N}, {'type': 'adaptive'} "
            "or {'type': 'disabled'}.",
            "thinking",
            "invalid_value",
        )
    if budget < 1024 or (max_tokens is not None and budget >= max_tokens):
        raise _refuse(
            f"thinking.budget_tokens must be at least 1024 and less than max_tokens "
            f"({max_tokens}); it is {budget}.",
            "thinking.budget_tokens",
            "invalid_value",
        )
    return effort_for_budget(budget)


def _response_format(output_format: Any) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` for Anthropic's ``output_format`` (``None``: none fits)."""
    if not isinstance(output_format, dict) or set(output_format) != {"type", "schema"}:
        return None
    if output_format["type"] != "json_schema" or not isinstance(output_format["schema"], dict):
        return None
    spec = {"name": "output", "schema": output_format["schema"]}
    return {"type": "json_schema", "json_schema": spec}


def _output_settings(name: str, value: Any) -> dict[str, Any] | None:
    """The chat parameters ``output_format`` or ``output_config`` stand for, if any."""
    if name == "output_format":
        found = _response_format(value)
        return None if found is None else {"response_format": found}
    if not isinstance(value, dict) or not value or set(value) - {"format", "effort"}:
        return None
    settings: dict[str, Any] = {}
    if "format" in value:
        found = _response_format(value["format"])
        if found is None:
            return None
        settings["response_format"] = found
    if "effort" in value:
        if value["effort"] not in ("low", "medium", "high"):
            return None
        settings["reasoning_effort"] = value["effort"]
    return settings


def _check_parameters(request: MessagesRequest, untranslatable: _Untranslatable) -> dict[str, Any]:
    """Refuse unknown parameters, note the native ones; the chat parameters some stand for
    (``output_format``/``output_config`` as ``response_format``, ``reasoning_effort``)."""
    extra = request.__pydantic_extra__ or {}
    unknown = sorted(set(extra) - _NATIVE_ONLY)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise _refuse(
            f"Unknown parameter(s) {names}; remove them.", unknown[0], "unknown_parameter"
        )
    translated: dict[str, Any] = {}
    for name in sorted(extra):
        if name == "service_tier" and extra[name] == "auto":
            continue  # every provider's default
        if name in ("output_format", "output_config"):
            settings = _output_settings(name, extra[name])
            if settings is not None:
                translated.update(settings)
                continue
        untranslatable.note(_refuse(f"Parameter {name!r} is Anthropic's own.", name), name)
    if request.top_k is not None:
        reason = "Parameter 'top_k' is Anthropic's own; use temperature or top_p instead."
        untranslatable.note(_refuse(reason, "top_k"), "top_k")
    metadata = request.metadata or {}
    if set(metadata) - {"user_id"}:
        raise _refuse("metadata accepts only 'user_id'.", "metadata", "invalid_value")
    return translated


def to_chat_request(request: MessagesRequest, *, beta: str | None = None) -> ChatCompletionRequest:
    """The canonical request for a Messages API request, carrying its Anthropic-native
    parts (:class:`~modelyard.gateway.schemas.AnthropicNative`); ``beta`` is the
    ``anthropic-beta`` header. A 400 for what no target could take."""
    untranslatable = _Untranslatable()
    translated = _check_parameters(request, untranslatable)
    limit = request.max_tokens if "max_tokens" in request.model_fields_set else None
    stated_effort = translated.pop("reasoning_effort", None)  # output_config's
    effort = _reasoning_effort(request.thinking, limit) or stated_effort
    values: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request, untranslatable),
        "max_tokens": request.max_tokens,
        "stream": request.stream,
        **translated,
    }
    if request.stream:
        values["stream_options"] = StreamOptions(include_usage=True)
    if request.temperature is not None:
        values["temperature"] = request.temperature
    if request.top_p is not None:
        values["top_p"] = request.top_p
    if request.stop_sequences:
        values["stop"] = list(request.stop_sequences)
    if request.tools:
        values["tools"] = _tools(request.tools, untranslatable) or None
    if request.tool_choice is not None and values.get("tools"):
        values["tool_choice"], parallel_off = _tool_choice(request.tool_choice)
        if parallel_off:
            values["parallel_tool_calls"] = False
    user = (request.metadata or {}).get("user_id")
    if user is not None:
        values["user"] = str(user)
    try:
        chat = ChatCompletionRequest(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _refuse(f"Invalid request: {where}: {first['msg']}", where, "invalid_value") from None
    body = request.model_dump(exclude_unset=True, exclude={"model", "stream"})
    native = AnthropicNative(
        body=body, beta=beta, untranslatable=untranslatable.reasons, reasoning_effort=effort
    )
    return chat.with_anthropic_native(native)


# -- the answer -------------------------------------------------------------------------

_FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def stop_reason(choice: dict[str, Any], stops: list[str]) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for an OpenAI choice.

    OpenAI does not say which stop sequence ended a completion (that is reported as
    ``end_turn``); vLLM and others do, in the choice's ``stop_reason``, which is honoured
    when it is one of the request's sequences.
    """
    finish = choice.get("finish_reason") or "stop"
    matched = choice.get("stop_reason")
    if finish == "stop" and isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return _FINISH_REASONS.get(finish, "end_turn"), None


def usage(counts: Any) -> dict[str, int]:
    """Anthropic's usage for OpenAI's (cached prompt tokens reported as cache reads)."""
    if not isinstance(counts, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    prompt = int(counts.get("prompt_tokens") or 0)
    details = counts.get("prompt_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    result = {
        "input_tokens": prompt - cached,
        "output_tokens": int(counts.get("completion_tokens") or 0),
    }
    if cached:
        result["cache_read_input_tokens"] = cached
    return result


def _tool_input(arguments: Any, name: str) -> Any:
    """The decoded arguments of a tool call (a 502 when they are not JSON)."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise BadGatewayError(
            f"The model called tool {name!r} with arguments that are not valid JSON.",
            code="invalid_tool_arguments",
        ) from None


def to_message(completion: dict[str, Any], *, model: str, stops: list[str]) -> dict[str, Any]:
    """The Anthropic ``message`` for an OpenAI chat completion (the provider's own when
    an Anthropic target answered a request with native parts)."""
    native = completion.get(NATIVE_MESSAGE)
    if isinstance(native, dict):
        return native
    choices = completion.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise BadGatewayError("The provider's answer has no choices.", code="upstream_protocol")
    choice = choices[0]
    answer = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = content_text(answer.get("content")) or content_text(answer.get("refusal"))
    if text:
        content.append({"type": "text", "text": text})
    for call in answer.get("tool_calls") or []:
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or _new_id("toolu"),
                "name": name,
                "input": _tool_input(function.get("arguments"), name),
            }
        )
    reason, sequence = stop_reason(choice, stops)
    return {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage(completion.get("usage")),
    }


class MessagesEventWriter(ChunkReader):
    """Turns OpenAI chunks into Anthropic events, one content block open at a time."""

    def __init__(self, *, model: str, stops: list[str]) -> None:
        self.model = model
        self.stops = stops
        self.block = -1  # index of the last block started
        self.open: str | None = None  # "text" or "tool" while a block is open
        self.tool: tuple[Any, str] | None = None  # (OpenAI index, id) of the open tool call
        super().__init__()

    def start(self, first: dict[str, Any] | None) -> list[bytes]:
        """``message_start`` and a ``ping``."""
        model = (first or {}).get("model") or self.model
        counts = usage((first or {}).get("usage"))
        message: dict[str, Any] = {
            "id": _new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**counts, "output_tokens": 0},
        }
        return [
            encode_named_event("message_start", {"type": "message_start", "message": message}),
            encode_named_event("ping", {"type": "ping"}),
        ]

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open, self.tool = None, None
        return [
            encode_named_event(
                "content_block_stop", {"type": "content_block_stop", "index": self.block}
            )
        ]

    def _begin(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        events = self._close()
        self.block += 1
        self.open = kind
        start = {"type": "content_block_start", "index": self.block, "content_block": block}
        return [*events, encode_named_event("content_block_start", start)]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self.block, "delta": delta}
        return encode_named_event("content_block_delta", event)

    def _text(self, text: str) -> list[bytes]:
        events = [] if self.open == "text" else self._begin("text", {"type": "text", "text": ""})
        return [*events, self._delta({"type": "text_delta", "text": text})]

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        function = call.get("function") or {}
        call_id = call.get("id")
        if call_id and (self.tool is None or self.tool[1] != call_id):
            block = {
                "type": "tool_use",
                "id": call_id,
                "name": str(function.get("name") or ""),
                "input": {},
            }
            events = self._begin("tool", block)
            self.tool = (call.get("index"), call_id)
        elif self.tool is None or call.get("index", self.tool[0]) != self.tool[0]:
            raise UpstreamError("protocol", "a tool call delta does not follow its tool call")
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if arguments:
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events

    def end(self) -> list[bytes]:
        """Close the open block, then ``message_delta`` and ``message_stop``."""
        reason, sequence = stop_reason(self.finish, self.stops)
        counts: dict[str, int] = {"output_tokens": 0}
        if self.chunk_usage is not None:
            counts = usage(self.chunk_usage)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": counts,
        }
        return [
            *self._close(),
            encode_named_event("message_delta", delta),
            encode_named_event("message_stop", {"type": "message_stop"}),
        ]


#: Anthropic's error ``type`` by HTTP status (see :func:`error_type`).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

#: A failed upstream call's category as the status it stands for, for ``error`` events.
_CATEGORY_STATUSES = {"client": 400, "not_found": 404, "rate_limited": 429}


def error_type(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status (other 4xx: ``invalid_request_error``)."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "invalid_request_error" if status < 500 else "api_error"


def _failure_event(error: UpstreamError | ModelyardError) -> bytes:
    if isinstance(error, ModelyardError):
        kind = error_type(error.status_code)
    else:
        kind = error_type(_CATEGORY_STATUSES.get(error.category, 500))
    failure = {
        "type": "error",
        "error": {"type": kind, "message": f"The upstream stream failed: {error}"},
    }
    return encode_named_event("error", failure)


async def _chained(
    first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk


async def anthropic_sse(
    first: dict[str, Any] | None,
    rest: AsyncIterator[dict[str, Any]],
    *,
    model: str,
    stops: list[str],
) -> AsyncIterator[bytes]:
    """The Messages API's SSE stream for an OpenAI chunk stream; chunks carrying an
    Anthropic target's own event (:data:`NATIVE_EVENT`) are relayed as that event."""
    translator = MessagesEventWriter(model=model, stops=stops)
    started = relayed = False
    last_relayed: Any = None
    try:
        async for chunk in _chained(first, rest):
            native = chunk.get(NATIVE_EVENT)
            if isinstance(native, dict):
                relayed, last_relayed = True, native.get("type")
                yield encode_named_event(str(native.get("type")), native)
                continue
            if not started:
                started = True
                for event in translator.start(first):
                    yield event
            for event in translator.feed(chunk):
                yield event
        if relayed:
            return
        if not started:
            for event in translator.start(first):
                yield event
        for event in translator.end():
            yield event
    except (UpstreamError, ModelyardError) as error:
        if last_relayed != "error":  # the provider's own error event was relayed already
            yield _failure_event(error)
    finally:
        closer = getattr(rest, "aclose", None)
        if closer is not None:
            await closer()
