"""Server-sent events as the OpenAI API writes them."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["DONE", "encode_event", "encode_named_event"]

DONE = b"data: [DONE]\n\n"


def encode_event(data: Any) -> bytes:
    """One ``data:`` event."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


def encode_named_event(event: str, data: Any) -> bytes:
    """An ``event:`` + ``data:`` pair, as the Anthropic Messages API streams."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
