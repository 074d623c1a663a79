"""Anthropic's Messages API (``POST {base}/v1/messages``) behind the OpenAI chat format.

The outbound direction: the gateway calling Anthropic (the inbound Messages API, clients
calling us, is :mod:`modelyard.gateway.inbound.anthropic_messages`).

* :func:`to_messages_body` turns a canonical request into a ``POST /v1/messages`` body;
  anything Anthropic cannot honour is refused with a 400 naming the parameter:
  ``seed`` (Anthropic has none; refused as LiteLLM does by default, left out by a route
  whose ``unsupported_params`` is ``drop``), ``logprobs``, penalties, ``logit_bias``…
  ``response_format`` (``json_schema``, ``json_object``) is answered through one tool
  named after the schema, forced (or, beside other tools or with thinking, asked for in
  the system prompt), its input returned as the message's content;
  ``reasoning_effort`` is a thinking budget (:data:`~modelyard.gateway.anthropic_native.
  EFFORT_BUDGETS`, within ``max_tokens``); ``user`` is ``metadata.user_id``.
* A request that came in on ``/v1/messages`` is sent as the client wrote it instead.
* :func:`to_completion` turns a Messages answer into a ``chat.completion``, and
  :class:`StreamTranslator` stream events into chunks (both built by
  :mod:`~modelyard.gateway.adapters.openai_shapes`).

HTTP errors are classified by :mod:`.wire` (Anthropic's 529 "overloaded" is a server
error, so the next target is tried); an ``error`` event in the stream raises a server
:class:`~modelyard.gateway.upstream_errors.UpstreamError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from modelyard.errors import BadRequestError
from modelyard.gateway.adapters import openai_shapes
from modelyard.gateway.adapters.base import Adapter, Target, refuse_unsupported
from modelyard.gateway.adapters.wire import post_json, post_sse, stream_error
from modelyard.gateway.anthropic_native import (
    ANTHROPIC_API,
    EFFORT_BUDGETS,
    NATIVE_EVENT,
    NATIVE_MESSAGE,
)
from modelyard.gateway.schemas import AnthropicNative, ChatCompletionRequest, ChatMessage
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.kinds import ConnectionCheck, Endpoint, ProviderKind, ProviderKindSpec

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "SUPPORTED_PARAMETERS",
    "AnthropicAdapter",
    "StreamTranslator",
    "finish_reason",
    "prompt_tokens",
    "structured_output",
    "to_completion",
    "to_messages_body",
]

#: The API version every request names.
ANTHROPIC_VERSION = "2023-06-01"

#: Anthropic requires ``max_tokens``; this is sent when the client gave no limit.
DEFAULT_MAX_TOKENS = 4096

#: Anthropic's smallest thinking budget.
MIN_THINKING_BUDGET = 1024

#: The tool answering ``response_format: {"type": "json_object"}``.
JSON_OBJECT_TOOL = "json_object"

#: The OpenAI parameters this translation honours (besides model, messages, stream, user).
SUPPORTED_PARAMETERS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
    }
)

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DOCUMENT_TYPES = frozenset({"application/pdf", "text/plain"})

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


# -- request ----------------------------------------------------------------------------


def _invalid(message: str, param: str = "messages") -> BadRequestError:
    return BadRequestError(message, param=param)


def _data_url(url: str, allowed: frozenset[str], what: str) -> dict[str, str]:
    """A base64 ``source`` from a ``data:`` URL, or a 400."""
    header, comma, data = url.partition(",")
    media_type, _, encoding = header.removeprefix("data:").partition(";")
    if not comma or encoding != "base64":
        raise _invalid(f"A {what} data: URL must be base64-encoded (data:<type>;base64,...).")
    if media_type not in allowed:
        raise _invalid(
            f"The Anthropic API does not accept {what}s of type {media_type or 'unknown'!r}; "
            f"use one of {', '.join(sorted(allowed))}."
        )
    return {"type": "base64", "media_type": media_type, "data": data}


def _part_block(part: dict[str, Any]) -> dict[str, Any] | None:
    """One OpenAI content part as an Anthropic content block (``None``: empty text)."""
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = str(part.get(kind) or "")
        return {"type": "text", "text": text} if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise _invalid("An image_url content part needs a url.")
        if url.startswith("data:"):
            return {"type": "image", "source": _data_url(url, _IMAGE_TYPES, "image")}
        return {"type": "image", "source": {"type": "url", "url": url}}
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, dict) else None
        if not isinstance(data, str) or not data.startswith("data:"):
            raise _invalid("The Anthropic API takes files only inline, as file_data data: URLs.")
        return {"type": "document", "source": _data_url(data, _DOCUMENT_TYPES, "file")}
    raise _invalid(f"Content parts of type {kind!r} are not supported by the Anthropic API.")


def _content_blocks(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = [_part_block(part) for part in content]
    return [block for block in blocks if block is not None]


def _text_of(content: str | list[dict[str, Any]] | None, role: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise _invalid(f"A {role} message may only contain text parts.")
        texts.append(str(part.get("text") or ""))
    return "\n".join(texts)


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    if call.get("type", "function") != "function" or not function.get("name"):
        raise _invalid("Only function tool calls with a name can be sent to the Anthropic API.")
    arguments = function.get("arguments") or "{}"
    try:
        decoded = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise _invalid(
            f"The arguments of tool call {call.get('id')!r} are not valid JSON."
        ) from None
    if not isinstance(decoded, dict):
        raise _invalid(f"The arguments of tool call {call.get('id')!r} must be a JSON object.")
    return {"type": "tool_use", "id": call.get("id"), "name": function["name"], "input": decoded}


def _tool_result(message: ChatMessage) -> dict[str, Any]:
    if not message.tool_call_id:
        raise _invalid("A tool message needs the tool_call_id it answers.")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    content = (
        _content_blocks(message.content) if isinstance(message.content, list) else message.content
    )
    if content:
        result["content"] = content
    return result


def _turn(message: ChatMessage) -> tuple[str, list[dict[str, Any]]]:
    """A non-system message as (Anthropic role, content blocks)."""
    if message.role == "user":
        return "user", _content_blocks(message.content)
    if message.role == "assistant":
        blocks = _content_blocks(message.content)
        blocks += [_tool_use(call) for call in message.tool_calls or []]
        return "assistant", blocks
    if message.role == "tool":
        return "user", [_tool_result(message)]
    raise _invalid(
        f"Messages with role {message.role!r} are not supported by the Anthropic API; "
        "use tool messages."
    )


def _conversation(messages: list[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """The joined system prompt and the alternating user/assistant turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            text = _text_of(message.content, message.role)
            if text:
                system.append(text)
            continue
        role, blocks = _turn(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise _invalid("The Anthropic API needs at least one user message with content.")
    if turns[0]["role"] != "user":
        raise _invalid(
            "The Anthropic API needs the conversation to start with a user message "
            "(after any system messages)."
        )
    for turn in turns:
        # Anthropic wants tool results first in a user turn, before any other content.
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return "\n\n".join(system), turns


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    translated = []
    for tool in tools:
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise _invalid("Only function tools are supported by the Anthropic API.", "tools")
        if not function.get("name"):
            raise _invalid("Every function tool needs a name.", "tools")
        entry: dict[str, Any] = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        translated.append(entry)
    return translated


def _tool_choice(choice: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str):
        mapped = {"auto": "auto", "required": "any", "none": "none"}.get(choice)
        if mapped is None:
            raise _invalid(f"Unknown tool_choice {choice!r}.", "tool_choice")
        return {"type": mapped}
    name = (choice.get("function") or {}).get("name")
    if choice.get("type") != "function" or not name:
        raise _invalid(
            'tool_choice must be "auto", "required", "none" or a function by name.',
            "tool_choice",
        )
    return {"type": "tool", "name": name}


def to_messages_body(request: ChatCompletionRequest, model: str) -> dict[str, Any]:
    """The Messages API body for ``request``; a 400 for what Anthropic cannot honour."""
    refuse_unsupported(request, "Anthropic", SUPPORTED_PARAMETERS)
    if request.temperature is not None and request.temperature > 1:
        raise _invalid(
            f"temperature {request.temperature:g} is out of range for the Anthropic API, "
            "which accepts 0 to 1.",
            "temperature",
        )
    system, turns = _conversation(request.messages)
    body: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": request.output_limit() or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop_list():
        body["stop_sequences"] = request.stop_list()
    if request.tools:
        body["tools"] = _tools(request.tools)
    choice = _tool_choice(request.tool_choice) if request.tool_choice is not None else None
    if request.extra_params().get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        body["tool_choice"] = choice
    if request.user:
        body["metadata"] = {"user_id": request.user}
    _add_thinking(body, request)
    structured = structured_output(request)
    if structured is not None:
        _add_structured_output(body, structured)
    return body


def _add_thinking(body: dict[str, Any], request: ChatCompletionRequest) -> None:
    """``reasoning_effort`` as a thinking budget (within ``max_tokens``, which counts it)."""
    effort = request.extra_params().get("reasoning_effort")
    if effort is None or effort == "none":
        return
    if not isinstance(effort, str) or effort not in EFFORT_BUDGETS:
        raise _invalid(
            f"reasoning_effort must be one of none, {', '.join(EFFORT_BUDGETS)}; it is {effort!r}.",
            "reasoning_effort",
        )
    if _continues_tool_use(body["messages"]):
        # Anthropic wants the signed thinking block that preceded the tool call back, which
        # OpenAI's messages cannot carry: this turn goes without thinking (as LiteLLM's).
        return
    budget = EFFORT_BUDGETS[effort]
    limit = request.output_limit()
    if limit is None:
        body["max_tokens"] = DEFAULT_MAX_TOKENS + budget
    elif limit <= MIN_THINKING_BUDGET:
        raise _invalid(
            f"With reasoning_effort, the Anthropic API needs max_tokens above "
            f"{MIN_THINKING_BUDGET} (it counts the thinking); it is {limit}.",
            "max_tokens",
        )
    else:
        budget = min(budget, limit - 1)
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _continues_tool_use(turns: list[dict[str, Any]]) -> bool:
    """Whether the last assistant turn called tools (the request answers those calls)."""
    last = next((turn for turn in reversed(turns) if turn["role"] == "assistant"), None)
    return last is not None and any(block["type"] == "tool_use" for block in last["content"])


def structured_output(request: ChatCompletionRequest) -> tuple[str, dict[str, Any]] | None:
    """The (tool name, input schema) answering ``response_format``; ``None`` for text."""
    response_format = request.extra_params().get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT_TOOL, {"type": "object"}
    spec = response_format.get("json_schema") if kind == "json_schema" else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise _invalid(
            "response_format must be {'type': 'text'}, {'type': 'json_object'} or "
            "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}.",
            "response_format",
        )
    schema = spec.get("schema") or {"type": "object"}
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise _invalid(
            "The Anthropic API answers structured output through a tool, whose input is an "
            "object: response_format's schema must have type 'object'.",
            "response_format",
        )
    return spec["name"], schema


def _add_structured_output(body: dict[str, Any], structured: tuple[str, dict[str, Any]]) -> None:
    """One tool named after the schema; forced unless other tools or thinking are in play
    (Anthropic refuses a forced tool with thinking), then asked for in the system prompt."""
    name, schema = structured
    tools = body.setdefault("tools", [])
    if any(tool["name"] == name for tool in tools):
        raise _invalid(
            f"A tool is named {name!r} like the response_format schema; rename one.",
            "response_format",
        )
    tools.append(
        {"name": name, "description": "Respond with this tool's input.", "input_schema": schema}
    )
    if len(tools) == 1 and "thinking" not in body:
        body["tool_choice"] = {"type": "tool", "name": name}
        return
    hint = f"Give your final answer by calling the tool {name!r} with it as the input."
    body["system"] = f"{body['system']}\n\n{hint}" if body.get("system") else hint


# -- response ---------------------------------------------------------------------------


def finish_reason(stop_reason: str | None) -> str | None:
    """Anthropic's ``stop_reason`` as OpenAI's ``finish_reason``."""
    if stop_reason is None:
        return None
    return _FINISH_REASONS.get(stop_reason, "stop")


def prompt_tokens(usage_: dict[str, Any]) -> int:
    """Input tokens, cache writes and cache reads included."""
    return sum(
        int(usage_.get(name) or 0)
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


def _usage(counts: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``usage`` for a Messages ``usage`` object (cache reads as cached tokens)."""
    return openai_shapes.usage(
        prompt_tokens(counts),
        int(counts.get("output_tokens") or 0),
        cached=int(counts.get("cache_read_input_tokens") or 0),
    )


def _arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def to_completion(answer: Any, *, structured: str | None = None) -> dict[str, Any]:
    """A Messages answer as a ``chat.completion``; a call of the ``structured`` tool (see
    :func:`structured_output`) is the message's content, as JSON text."""
    if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
        raise UpstreamError("protocol", "the provider's answer has no content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    output: str | None = None
    for block in answer["content"]:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use" and structured and block.get("name") == structured:
            output = _arguments(block.get("input"))
        elif block.get("type") == "tool_use":
            arguments = _arguments(block.get("input"))
            calls.append(openai_shapes.tool_call(block.get("id"), block.get("name"), arguments))
    content = "".join(texts) if texts or not calls else None
    reason = finish_reason(answer.get("stop_reason")) or "stop"
    if output is not None:
        content = output
        reason = "tool_calls" if calls else "stop"
    raw_usage = answer.get("usage")
    return openai_shapes.completion(
        id=answer.get("id") or "msg_unknown",
        model=answer.get("model"),
        message=openai_shapes.assistant_message(content, calls),
        finish_reason=reason,
        usage=_usage(raw_usage if isinstance(raw_usage, dict) else {}),
    )


# -- the stream --------------------------------------------------------------------------


class StreamTranslator:
    """Turns Messages stream events, one at a time, into ``chat.completion.chunk`` dicts."""

    def __init__(self, model: str, *, structured: str | None = None, forced: bool = False) -> None:
        #: Its id and model are the message's, once ``message_start`` names them.
        self.envelope = openai_shapes.ChunkEnvelope(id="msg_unknown", model=model)
        #: The tool answering ``response_format`` (its input streams as content), and
        #: whether it was forced (then text blocks are a preamble, left out).
        self.structured = structured
        self.forced = forced
        self.structured_block: int | None = None
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self.completion_tokens = 0
        #: Content block index → tool call index, for the blocks that are tool calls.
        self.tool_index: dict[int, int] = {}
        self.finished = False

    def _count(self, counts: Any) -> None:
        if not isinstance(counts, dict):
            return
        if "input_tokens" in counts:
            self.prompt_tokens = prompt_tokens(counts)
            self.cached_tokens = int(counts.get("cache_read_input_tokens") or 0)
        if "output_tokens" in counts:
            self.completion_tokens = int(counts.get("output_tokens") or 0)

    def _start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        message = event.get("message") or {}
        self.envelope.id = message.get("id") or self.envelope.id
        self.envelope.model = message.get("model") or self.envelope.model
        self._count(message.get("usage"))
        return [self.envelope.chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        block = event.get("content_block") or {}
        if block.get("type") == "text" and block.get("text") and not self.forced:
            return [self.envelope.chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []
        if self.structured and block.get("name") == self.structured:
            self.structured_block = int(event.get("index", 0))
            return []
        index = self.tool_index[int(event.get("index", 0))] = len(self.tool_index)
        call = {"index": index, **openai_shapes.tool_call(block.get("id"), block.get("name"), "")}
        return [self.envelope.chunk({"tool_calls": [call]})]

    def _block_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [] if self.forced else [self.envelope.chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            if self.structured_block == int(event.get("index", 0)):
                return [self.envelope.chunk({"content": delta["partial_json"]})]
            index = self.tool_index.get(int(event.get("index", 0)))
            if index is None:
                raise UpstreamError("protocol", "tool input for a block that is no tool call")
            call = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [self.envelope.chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self._count(event.get("usage"))
        reason = finish_reason((event.get("delta") or {}).get("stop_reason"))
        if reason == "tool_calls" and self.structured_block is not None and not self.tool_index:
            reason = "stop"  # the only tool called was the answer's
        return [self.envelope.chunk({}, reason)] if reason else []

    def _stop(self) -> list[dict[str, Any]]:
        self.finished = True
        counts = openai_shapes.usage(
            self.prompt_tokens, self.completion_tokens, cached=self.cached_tokens
        )
        return [self.envelope.usage_chunk(counts)]

    def feed(self, event: Any) -> list[dict[str, Any]]:
        """The chunks for one event; raises :class:`UpstreamError` on an ``error`` event."""
        if not isinstance(event, dict):
            raise UpstreamError("protocol", "the provider sent an event that is no object")
        kind = event.get("type")
        if kind == "error":
            raise stream_error(event)
        if kind == "message_start":
            return self._start(event)
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            return self._message_delta(event)
        if kind == "message_stop":
            return self._stop()
        return []  # ping, content_block_stop and event types added later


# -- the adapter -----------------------------------------------------------------------


def anthropic_auth(api_key: str | None, organization: str | None = None) -> dict[str, str]:
    """Anthropic's headers: the API version, and the key in ``x-api-key``."""
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


def _headers(target: Target, native: AnthropicNative | None = None) -> dict[str, str]:
    headers = anthropic_auth(target.api_key)
    if native is not None and native.beta:
        headers["anthropic-beta"] = native.beta
    return headers


def _url(target: Target, path: str = "/v1/messages") -> str:
    return f"{target.base_url}{path}"


#: What ``POST /v1/messages/count_tokens`` takes of a Messages request.
_COUNTED_FIELDS = frozenset(
    {
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "mcp_servers",
        "context_management",
        "output_config",
        "output_format",
    }
)


def _is_error(event: Any) -> bool:
    return isinstance(event, dict) and event.get("type") == "error"


class AnthropicAdapter(Adapter):
    """Chat completions, streamed or not, with tools, through the Messages API.

    A request that came in as a Messages request (with
    :attr:`~modelyard.gateway.schemas.ChatCompletionRequest.anthropic_native`) is sent as
    the client wrote it, and the provider's answer travels beside the translated one.
    """

    api = ANTHROPIC_API
    supports_tools = True
    #: Messages answers one choice; ``n`` > 1 is made by the gateway's fan-out.
    supports_n = False
    counts_tokens = True

    def _body(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        native = request.anthropic_native
        if native is None:
            return to_messages_body(request, target.model)
        return {**native.body, "model": target.model}

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        native = request.anthropic_native
        answer = await post_json(
            self.http,
            _url(target),
            headers=_headers(target, native),
            body=self._body(request, target),
            timeout=target.timeout,
        )
        if native is not None:
            return {**to_completion(answer), NATIVE_MESSAGE: answer}
        structured = structured_output(request)
        return to_completion(answer, structured=structured[0] if structured else None)

    async def stream_chat(
        self, request: ChatCompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        native = request.anthropic_native
        body = {**self._body(request, target), "stream": True}
        structured = structured_output(request) if native is None else None
        translator = StreamTranslator(
            target.model,
            structured=structured[0] if structured else None,
            forced=body.get("tool_choice", {}).get("type") == "tool" and structured is not None,
        )
        started = False
        async for event in post_sse(
            self.http,
            _url(target),
            headers=_headers(target, native),
            body=body,
            timeout=target.timeout,
        ):
            if native is not None and started and _is_error(event):
                # Relayed as it came (its type says what failed), then the stream fails;
                # before the first chunk it only fails, so that the next target is tried.
                yield {**translator.envelope.chunk({}), NATIVE_EVENT: event}
            chunks = translator.feed(event)
            if native is not None:  # every event rides on a chunk, as it came
                first = chunks[0] if chunks else translator.envelope.chunk({})
                chunks = [{**first, NATIVE_EVENT: event}, *chunks[1:]]
            for chunk in chunks:
                started = True
                yield chunk
        if not translator.finished:
            raise UpstreamError("protocol", "the stream ended before message_stop")

    async def count_tokens(self, request: ChatCompletionRequest, target: Target) -> int | None:
        """``POST /v1/messages/count_tokens``: the provider's exact count (not billed)."""
        native = request.anthropic_native
        source = native.body if native is not None else to_messages_body(request, target.model)
        body = {name: value for name, value in source.items() if name in _COUNTED_FIELDS}
        answer = await post_json(
            self.http,
            _url(target, "/v1/messages/count_tokens"),
            headers=_headers(target, native),
            body={**body, "model": target.model},
            timeout=target.timeout,
        )
        tokens = answer.get("input_tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, int) or isinstance(tokens, bool):
            raise UpstreamError("protocol", "the provider's token count has no input_tokens")
        return tokens


ANTHROPIC = ProviderKindSpec(
    ProviderKind.ANTHROPIC,
    "Anthropic",
    "https://api.anthropic.com",
    (Endpoint("anthropic"),),
    adapters=(AnthropicAdapter,),
    auth=anthropic_auth,
    check=ConnectionCheck("/v1/models"),
    env_vars=("ANTHROPIC_API_KEY",),
    key_prefix="sk-ant-",
    key_min_length=20,
    key_url="https://console.anthropic.com/settings/keys",
)
