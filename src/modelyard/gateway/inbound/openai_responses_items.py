"""A stored Response's input as Responses items (``GET /v1/responses/{id}/input_items``).

The gateway keeps a response's context in chat form (see :mod:`modelyard.responses.store`);
this module turns those messages back into items: user, system and developer messages
(``input_text`` / ``input_image`` parts), assistant messages (``output_text``), their
``function_call`` items and the ``function_call_output`` items that answered them. Item
ids are derived from the response id and the item's place, so they are stable across
calls (``after`` pages by them).
"""

from __future__ import annotations

from typing import Any, Literal

from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatMessage

__all__ = ["context_input", "input_items", "item_page"]


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _input_parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"type": "input_text", "text": _text_of(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url") if isinstance(image, dict) else image
            detail = (image.get("detail") if isinstance(image, dict) else None) or "auto"
            parts.append({"type": "input_image", "image_url": url, "detail": detail})
        else:
            parts.append({"type": "input_text", "text": str(part.get("text") or "")})
    return parts


def input_items(messages: list[ChatMessage], response_id: str) -> list[dict[str, Any]]:
    """The Responses items for a context's chat messages, oldest first."""
    stem = response_id.removeprefix("resp_")
    items: list[dict[str, Any]] = []

    def item_id(prefix: str) -> str:
        return f"{prefix}_{stem}_{len(items)}"

    for message in messages:
        if message.role == "tool":
            items.append(
                {
                    "id": item_id("fco"),
                    "type": "function_call_output",
                    "call_id": message.tool_call_id or "",
                    "output": _text_of(message.content),
                    "status": "completed",
                }
            )
        elif message.role == "assistant":
            text = _text_of(message.content)
            if text or not message.tool_calls:
                part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                items.append(
                    {
                        "id": item_id("msg"),
                        "type": "message",
                        "role": "assistant",
                        "status": "completed",
                        "content": [part],
                    }
                )
            for call in message.tool_calls or []:
                function = call.get("function") or {}
                items.append(
                    {
                        "id": item_id("fc"),
                        "type": "function_call",
                        "call_id": str(call.get("id") or ""),
                        "name": str(function.get("name") or ""),
                        "arguments": str(function.get("arguments") or ""),
                        "status": "completed",
                    }
                )
        else:
            role = message.role if message.role in ("system", "developer") else "user"
            items.append(
                {
                    "id": item_id("msg"),
                    "type": "message",
                    "role": role,
                    "status": "completed",
                    "content": _input_parts(message.content),
                }
            )
    return items


def context_input(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """A stored context as input items for an upstream that never saw it: no item ids
    or statuses (they name nothing there), no log probabilities."""
    items = input_items(messages, "resp_context")
    for item in items:
        item.pop("id", None)
        item.pop("status", None)
        for part in item.get("content") or []:
            part.pop("logprobs", None)
    return items


def item_page(
    items: list[dict[str, Any]], *, limit: int, order: Literal["asc", "desc"], after: str | None
) -> dict[str, Any]:
    """One page of ``items`` in OpenAI's list shape (``after``: the last id already seen)."""
    ordered = items if order == "asc" else items[::-1]
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise BadRequestError(
                f"after={after!r} is not an item of this response; pass the last_id of the "
                "previous page.",
                param="after",
                code="invalid_value",
            )
        ordered = ordered[ids.index(after) + 1 :]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "has_more": len(ordered) > limit,
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
    }
