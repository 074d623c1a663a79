"""What the inbound stream writers share: reading the gateway's OpenAI chunks.

A writer for another API's stream (Anthropic's Messages events, OpenAI's Responses events)
subclasses :class:`ChunkReader` and says what a piece of text and a tool-call delta become;
:meth:`ChunkReader.feed` reads each chunk and keeps its usage and the finishing choice for
the writer's end.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChunkReader", "content_text"]


def content_text(content: Any) -> str:
    """The text of a chat message's content (a string or text parts)."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


class ChunkReader:
    """Reads OpenAI chunks for a writer of another API's events (the first choice only)."""

    def __init__(self) -> None:
        #: The usage of the last chunk that carried one (OpenAI's shape), else ``None``.
        self.chunk_usage: dict[str, Any] | None = None
        #: The choice that carried ``finish_reason`` (empty until one did).
        self.finish: dict[str, Any] = {}

    def _text(self, text: str) -> list[bytes]:
        raise NotImplementedError

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        raise NotImplementedError

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """The events for one chunk (usage and the finish are kept for the end)."""
        if isinstance(chunk.get("usage"), dict):
            self.chunk_usage = chunk["usage"]
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        delta = choice.get("delta") or {}
        events: list[bytes] = []
        text = content_text(delta.get("content")) or content_text(delta.get("refusal"))
        if text:
            events.extend(self._text(text))
        for call in delta.get("tool_calls") or []:
            events.extend(self._tool_call(call))
        if choice.get("finish_reason"):
            self.finish = choice
        return events
