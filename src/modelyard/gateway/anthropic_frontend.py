"""The Anthropic Messages API in front of the gateway: the request translation.

The gateway's canonical format is OpenAI's. :func:`to_chat_request` turns a Messages API
request into a :class:`~modelyard.gateway.schemas.ChatCompletionRequest`, refusing with a
400 whatever cannot be expressed there (``top_k``, server tools, documents, thinking, …).
Answers are translated back by :mod:`~modelyard.gateway.anthropic_replies`.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatCompletionRequest, ChatMessage, StreamOptions

__all__ = ["AnthropicMessage", "MessagesRequest", "to_chat_request"]

#: Messages API parameters that exist but that the gateway cannot honour.
_UNSUPPORTED = frozenset(
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
        "thinking",
        "user_profile_id",
        "workspace_id",
    }
)


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
    #: A prompt-caching hint, like the blocks' ``cache_control``: accepted, not forwarded.
    cache_control: dict[str, Any] | None = None


def _refuse(message: str, param: str, code: str = "unsupported_parameter") -> BadRequestError:
    return BadRequestError(message, param=param, code=code)


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
    _check_keys(block, {"text"}, where)
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


def _user_messages(blocks: list[dict[str, Any]], where: str) -> list[ChatMessage]:
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
        if kind == "text":
            parts.append({"type": "text", "text": _block_text(block, here)})
        elif kind == "image":
            parts.append(_image_part(block, here))
        elif kind == "tool_result":
            flush()
            result.append(_tool_message(block, here))
        else:
            raise _refuse(f"Content blocks of type {kind!r} are not supported in {here}.", here)
    flush()
    return result


def _assistant_message(blocks: list[dict[str, Any]], where: str) -> ChatMessage:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for position, block in enumerate(blocks):
        here = f"{where}.{position}"
        kind = block.get("type")
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
        else:
            raise _refuse(f"Content blocks of type {kind!r} are not supported in {here}.", here)
    return ChatMessage(
        role="assistant", content="".join(texts) if texts else None, tool_calls=calls or None
    )


def _messages(request: MessagesRequest) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if request.system:
        messages.append(ChatMessage(role="system", content=_text_of(request.system, "system")))
    for position, turn in enumerate(request.messages):
        where = f"messages.{position}.content"
        if isinstance(turn.content, str):
            messages.append(ChatMessage(role=turn.role, content=turn.content))
        elif not turn.content:
            raise _refuse(f"{where} must not be an empty list.", where, "invalid_value")
        elif turn.role == "user":
            messages.extend(_user_messages(turn.content, where))
        else:
            messages.append(_assistant_message(turn.content, where))
    return messages


def _tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if tool.get("type") not in (None, "custom"):
        raise _refuse(
            f"{where}: Anthropic server tools ({tool['type']!r}) are not supported; "
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


def _check_parameters(request: MessagesRequest) -> None:
    extra = request.__pydantic_extra__ or {}
    if extra.get("thinking") in ({"type": "disabled"}, None):
        extra = {name: value for name, value in extra.items() if name != "thinking"}
    for name in sorted(extra):
        if name in _UNSUPPORTED:
            raise _refuse(f"Parameter {name!r} is not supported by this gateway.", name)
    if extra:
        names = ", ".join(repr(name) for name in sorted(extra))
        raise _refuse(
            f"Unknown parameter(s) {names}; remove them.", sorted(extra)[0], "unknown_parameter"
        )
    if request.top_k is not None:
        raise _refuse(
            "Parameter 'top_k' is not supported: the gateway speaks OpenAI's format "
            "upstream, which has no top_k. Use temperature or top_p instead.",
            "top_k",
        )
    metadata = request.metadata or {}
    if set(metadata) - {"user_id"}:
        raise _refuse("metadata accepts only 'user_id'.", "metadata", "invalid_value")


def to_chat_request(request: MessagesRequest) -> ChatCompletionRequest:
    """The canonical request for a Messages API request (a 400 for what cannot be sent)."""
    _check_parameters(request)
    values: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request),
        "max_tokens": request.max_tokens,
        "stream": request.stream,
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
        values["tools"] = [_tool(tool, f"tools.{i}") for i, tool in enumerate(request.tools)]
    if request.tool_choice is not None:
        values["tool_choice"], parallel_off = _tool_choice(request.tool_choice)
        if parallel_off:
            values["parallel_tool_calls"] = False
    user = (request.metadata or {}).get("user_id")
    if user is not None:
        values["user"] = str(user)
    try:
        return ChatCompletionRequest(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _refuse(f"Invalid request: {where}: {first['msg']}", where, "invalid_value") from None
