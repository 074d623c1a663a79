"""OpenAI's Responses API in front of the gateway (clients calling ``POST /v1/responses``).

The gateway's canonical format is Chat Completions; this module turns a Responses request
into a :class:`~modelyard.gateway.schemas.ChatCompletionRequest`, refusing with a 400 what
cannot be expressed there (built-in tools such as ``web_search``, ``background``,
``conversation``, file inputs, …). The answer's direction is
:mod:`~modelyard.gateway.inbound.openai_responses_output` (JSON) and
:mod:`~modelyard.gateway.inbound.openai_responses_stream` (events).

* :func:`input_messages` turns ``input`` (a string, or ``message``, ``function_call`` and
  ``function_call_output`` items) into chat messages;
* :func:`to_chat_request` builds the chat request: ``instructions`` first (never carried
  into a stored context), then the stored context of ``previous_response_id`` (given by the
  caller, already resolved for its user), then the new input. ``metadata`` is kept on the
  Response only (Chat Completions accepts it only with its own ``store``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatCompletionRequest, ChatMessage, StreamOptions

__all__ = [
    "ResponsesRequest",
    "input_messages",
    "to_chat_request",
]

#: Responses API parameters that exist but that the gateway cannot honour.
_UNSUPPORTED = frozenset(
    {
        "background",
        "context_management",
        "conversation",
        "max_tool_calls",
        "moderation",
        "prompt",
        "prompt_cache_options",
        "prompt_cache_retention",
        "top_logprobs",
    }
)
#: Chat Completions parameters of the same name and meaning, passed on as they are.
_FORWARDED = ("prompt_cache_key", "safety_identifier")
_ROLES = frozenset({"user", "assistant", "system", "developer"})
#: The one ``include`` value that asks for something; the others name data of items the
#: gateway never produces (reasoning, built-in tool calls), so they are vacuously honoured.
_LOGPROBS = "message.output_text.logprobs"


class ResponsesRequest(BaseModel):
    """The body of ``POST /v1/responses`` (unknown fields are refused by the translation)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300)
    input: str | list[dict[str, Any]] = Field(default_factory=list)
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, max_length=64)
    store: bool = True
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)


def _refuse(message: str, param: str, code: str = "unsupported_parameter") -> BadRequestError:
    return BadRequestError(message, param=param, code=code)


def _check_keys(item: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(item) - allowed - {"type"})
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise _refuse(f"Unknown field(s) {names} in {where}.", f"{where}.{unknown[0]}")


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise _refuse(f"{where}.{key} must be a string.", f"{where}.{key}", "invalid_value")
    return value


# -- input items ------------------------------------------------------------------------


def _image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    _check_keys(part, {"image_url", "detail", "file_id"}, where)
    if part.get("file_id") is not None or not isinstance(part.get("image_url"), str):
        raise _refuse(
            f"{where}: only images given by 'image_url' (a URL or a data URL) are supported; "
            "uploaded files ('file_id') are not.",
            f"{where}.image_url",
        )
    image: dict[str, Any] = {"url": part["image_url"]}
    if part.get("detail") is not None:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _parts(content: list[dict[str, Any]], role: str, where: str) -> list[dict[str, Any]]:
    """Chat content parts for a message's Responses content parts."""
    parts: list[dict[str, Any]] = []
    for position, part in enumerate(content):
        here = f"{where}.{position}"
        if not isinstance(part, dict):
            raise _refuse(f"{here} must be an object.", here, "invalid_value")
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            _check_keys(part, {"text", "annotations", "logprobs"}, here)
            parts.append({"type": "text", "text": _string(part, "text", here)})
        elif kind == "refusal":
            _check_keys(part, {"refusal"}, here)
            parts.append({"type": "text", "text": _string(part, "refusal", here)})
        elif kind == "input_image" and role == "user":
            parts.append(_image_part(part, here))
        else:
            raise _refuse(
                f"Content parts of type {kind!r} are not supported in {here} (supported: "
                "input_text, output_text, refusal and, for users, input_image by URL).",
                f"{here}.type",
            )
    return parts


def _message(item: dict[str, Any], where: str) -> ChatMessage:
    _check_keys(item, {"role", "content", "id", "status", "phase"}, where)
    role = item.get("role")
    if role not in _ROLES:
        raise _refuse(
            f"{where}.role must be one of user, assistant, system or developer.",
            f"{where}.role",
            "invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return ChatMessage(role=role, content=content)
    if not isinstance(content, list):
        raise _refuse(
            f"{where}.content must be a string or a list of parts.",
            f"{where}.content",
            "invalid_value",
        )
    parts = _parts(content, role, f"{where}.content")
    if all(part["type"] == "text" for part in parts):
        return ChatMessage(role=role, content="".join(part["text"] for part in parts))
    return ChatMessage(role=role, content=parts)


def _function_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    _check_keys(item, {"call_id", "name", "arguments", "id", "status", "namespace"}, where)
    return {
        "id": _string(item, "call_id", where),
        "type": "function",
        "function": {
            "name": _string(item, "name", where),
            "arguments": _string(item, "arguments", where) if "arguments" in item else "{}",
        },
    }


def _call_output(item: dict[str, Any], where: str) -> ChatMessage:
    _check_keys(item, {"call_id", "output", "id", "status"}, where)
    output = item.get("output")
    if isinstance(output, list):
        parts = _parts(output, "tool", f"{where}.output")
        output = "".join(part["text"] for part in parts)
    if not isinstance(output, str):
        raise _refuse(
            f"{where}.output must be a string or a list of text parts.",
            f"{where}.output",
            "invalid_value",
        )
    return ChatMessage(role="tool", tool_call_id=_string(item, "call_id", where), content=output)


def input_messages(value: str | list[dict[str, Any]], where: str = "input") -> list[ChatMessage]:
    """The chat messages for a Responses ``input``.

    A ``function_call`` joins the assistant message before it (so parallel calls are one
    assistant turn, as Chat Completions wants them). ``reasoning`` items (OpenAI's
    encrypted reasoning, sent back by clients that keep the history) are dropped.
    """
    if isinstance(value, str):
        return [ChatMessage(role="user", content=value)]
    messages: list[ChatMessage] = []
    for position, item in enumerate(value):
        here = f"{where}.{position}"
        if not isinstance(item, dict):
            raise _refuse(f"{here} must be an object.", here, "invalid_value")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, here))
        elif kind == "function_call":
            call = _function_call(item, here)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and not isinstance(last.content, list):
                last.tool_calls = [*(last.tool_calls or []), call]
            else:
                messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
        elif kind == "function_call_output":
            messages.append(_call_output(item, here))
        elif kind == "reasoning":
            continue  # another provider's opaque reasoning: nothing a chat upstream can read
        else:
            raise _refuse(
                f"Input items of type {kind!r} are not supported in {here} (supported: "
                "message, function_call, function_call_output).",
                f"{here}.type",
            )
    return messages


# -- tools and formats ------------------------------------------------------------------


def _tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    kind = tool.get("type")
    if kind != "function":
        raise _refuse(
            f"{where}: built-in tool {kind!r} is not supported by this gateway; only "
            "'function' tools (run by the client) are.",
            f"{where}.type",
        )
    _check_keys(tool, {"name", "description", "parameters", "strict"}, where)
    function: dict[str, Any] = {"name": _string(tool, "name", where)}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        _check_keys(choice, {"name"}, "tool_choice")
        return {"type": "function", "function": {"name": _string(choice, "name", "tool_choice")}}
    raise _refuse(
        "tool_choice must be 'auto', 'none', 'required' or {'type': 'function', 'name': …}.",
        "tool_choice",
        "invalid_value",
    )


def _response_format(text: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Chat's ``response_format`` and ``verbosity`` for Responses' ``text``."""
    _check_keys(text, {"format", "verbosity"}, "text")
    verbosity = text.get("verbosity")
    spec = text.get("format")
    if spec is None or spec == {"type": "text"}:
        return None, verbosity
    if not isinstance(spec, dict):
        raise _refuse("text.format must be an object.", "text.format", "invalid_value")
    kind = spec.get("type")
    if kind == "json_object":
        _check_keys(spec, set(), "text.format")
        return {"type": "json_object"}, verbosity
    if kind == "json_schema":
        _check_keys(spec, {"name", "schema", "strict", "description"}, "text.format")
        if not isinstance(spec.get("schema"), dict):
            raise _refuse(
                "text.format.schema must be a JSON schema object.",
                "text.format.schema",
                "invalid_value",
            )
        schema = {
            key: spec[key] for key in ("name", "schema", "strict", "description") if key in spec
        }
        return {"type": "json_schema", "json_schema": schema}, verbosity
    raise _refuse(
        "text.format.type must be 'text', 'json_object' or 'json_schema'.",
        "text.format.type",
        "invalid_value",
    )


def _reasoning_effort(reasoning: dict[str, Any]) -> str | None:
    """Chat's ``reasoning_effort``; summaries are not produced (accepted, not forwarded)."""
    _check_keys(reasoning, {"effort", "summary", "generate_summary"}, "reasoning")
    for key in ("effort", "summary", "generate_summary"):
        if reasoning.get(key) is not None and not isinstance(reasoning[key], str):
            raise _refuse(f"reasoning.{key} must be a string.", f"reasoning.{key}", "invalid_value")
    effort: str | None = reasoning.get("effort")
    return effort


def _check_parameters(request: ResponsesRequest) -> None:
    extra = request.__pydantic_extra__ or {}
    for name in sorted(extra):
        if name in _UNSUPPORTED and extra[name] not in (None, False):
            raise _refuse(f"Parameter {name!r} is not supported by this gateway.", name)
    unknown = sorted(name for name in extra if name not in _UNSUPPORTED)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise _refuse(
            f"Unknown parameter(s) {names}; remove them.", unknown[0], "unknown_parameter"
        )
    if _LOGPROBS in (request.include or ()):
        raise _refuse(
            f"include {_LOGPROBS!r} is not supported: the gateway returns no log probabilities.",
            "include",
        )
    metadata = request.metadata or {}
    if len(metadata) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in metadata.items()):
        raise _refuse(
            "metadata holds at most 16 pairs, keys of at most 64 characters and values of at "
            "most 512.",
            "metadata",
            "invalid_value",
        )
    if request.truncation == "auto":
        raise _refuse(
            "truncation 'auto' is not supported; the gateway never drops context.", "truncation"
        )
    if not request.input and not request.previous_response_id:
        raise _refuse(
            "input is required: a string or a list of input items.",
            "input",
            "missing_required_parameter",
        )


def to_chat_request(
    request: ResponsesRequest, context: list[ChatMessage] | None = None
) -> ChatCompletionRequest:
    """The chat request for a Responses request; ``context``: the previous response's."""
    _check_parameters(request)
    messages: list[ChatMessage] = []
    if request.instructions:
        messages.append(ChatMessage(role="system", content=request.instructions))
    messages.extend(context or [])
    messages.extend(input_messages(request.input))
    values: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "stream": request.stream,
    }
    if request.stream:
        values["stream_options"] = StreamOptions(include_usage=True)
    for name in ("temperature", "top_p", "user", *_FORWARDED):
        if getattr(request, name) is not None:
            values[name] = getattr(request, name)
    if request.max_output_tokens is not None:
        values["max_completion_tokens"] = request.max_output_tokens
    if request.tools:
        values["tools"] = [_tool(tool, f"tools.{i}") for i, tool in enumerate(request.tools)]
        if request.parallel_tool_calls is not None:
            values["parallel_tool_calls"] = request.parallel_tool_calls
    if request.tool_choice is not None:
        choice = _tool_choice(request.tool_choice)
        if request.tools or choice not in ("auto", "none"):  # chat refuses them without tools
            values["tool_choice"] = choice
    if request.text is not None:
        response_format, verbosity = _response_format(request.text)
        if response_format is not None:
            values["response_format"] = response_format
        if verbosity is not None:
            values["verbosity"] = verbosity
    effort = _reasoning_effort(request.reasoning or {})
    if effort is not None:
        values["reasoning_effort"] = effort
    try:
        return ChatCompletionRequest(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _refuse(f"Invalid request: {where}: {first['msg']}", where, "invalid_value") from None
