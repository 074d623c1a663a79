"""A provider's server-sent events, decoded from its bytes as they arrive.

:func:`~modelyard.gateway.adapters.wire.post_sse` feeds each network read to one
:class:`SseDataDecoder` and gets back every ``data:`` payload it completed, decoded from
JSON: one call per read rather than one ``readline`` per line. Lines end with LF or CRLF
(every provider's framing); ``event:``, ``id:``, comments and blank lines carry nothing the
adapters read (an Anthropic event names its type in its data too).
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard.gateway.upstream_errors import UpstreamError

__all__ = ["MAX_LINE_BYTES", "SseDataDecoder"]

#: The longest line a provider may send (a whole answer in one event is well within it).
MAX_LINE_BYTES = 16 * 1024 * 1024


class SseDataDecoder:
    """``feed(bytes)`` → the decoded ``data:`` payloads completed so far; ``done`` once
    ``data: [DONE]`` came (nothing after it is decoded); ``end()`` at the end of the body."""

    __slots__ = ("_partial", "_partial_bytes", "done")

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # a line begun in earlier reads, not yet ended
        self._partial_bytes = 0
        self.done = False

    def feed(self, data: bytes) -> list[Any]:
        """The payloads of the lines ``data`` completes; an :class:`UpstreamError`
        (``protocol``) for invalid JSON or a line over :data:`MAX_LINE_BYTES`."""
        end = data.rfind(b"\n")
        if end < 0:
            self._hold(data)
            return []
        complete, rest = data[: end + 1], data[end + 1 :]
        if self._partial:
            complete = b"".join([*self._partial, complete])
            self._partial.clear()
            self._partial_bytes = 0
        self._hold(rest)
        return self._decode(complete.split(b"\n"))

    def end(self) -> list[Any]:
        """The payload of a last line the body ended without a line break after."""
        last = b"".join(self._partial)
        self._partial.clear()
        self._partial_bytes = 0
        return self._decode([last]) if last else []

    def _hold(self, data: bytes) -> None:
        if not data:
            return
        self._partial.append(data)
        self._partial_bytes += len(data)
        if self._partial_bytes > MAX_LINE_BYTES:
            limit = MAX_LINE_BYTES // (1024 * 1024)
            raise UpstreamError("protocol", f"the provider sent an event line over {limit} MiB")

    def _decode(self, lines: list[bytes]) -> list[Any]:
        events: list[Any] = []
        if self.done:
            return events
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if not data:
                continue
            if data == b"[DONE]":
                self.done = True
                break
            try:
                events.append(orjson.loads(data))
            except orjson.JSONDecodeError:
                raise UpstreamError("protocol", "the provider sent an invalid event") from None
        return events
