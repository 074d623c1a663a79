"""The HTTP/1.1 protocol ``modelyard serve`` runs: uvicorn's, with its writes coalesced.

uvicorn writes each ASGI message to the socket at once: a response's headers, then each
body message, one ``send`` system call apiece. A streamed answer whose upstream delivered
several chunks in one read relays them all in one event-loop step, and went out as a
dozen segments. :class:`CoalescedWrites` holds what is written during a step and sends it
in one call at the start of the next (``loop.call_soon``), at once when a response ends
(:meth:`CoalescingHttpToolsProtocol.on_response_complete`), when 64 KiB are held, or
before the connection closes. Nothing waits for later data: a chunk that arrives alone
leaves in the same loop iteration, and a busy worker sends fewer, larger segments
(``python -m bench.profile --cpu``, docs/benchmarks.md).

One exception keeps the time to first chunk short: a response's first body piece that
joins its held head is sent at once with it. Without that, a stream whose upstream
delivered all its chunks in one read reached the client only once every chunk had been
relayed (a plain JSON answer is still one write: head and body).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["FLUSH_BYTES", "HTTP_PROTOCOL", "CoalescedWrites", "CoalescingHttpToolsProtocol"]

#: What uvicorn's ``http`` setting names: this module's protocol.
HTTP_PROTOCOL = f"{__name__}:CoalescingHttpToolsProtocol"

#: Held bytes that are sent at once rather than at the next step.
FLUSH_BYTES = 64 * 1024


class CoalescedWrites:
    """A transport whose writes during one event-loop step go out in one ``write``.

    Every other attribute is the wrapped transport's; flow control stays the wrapped
    transport's too (it pauses the protocol once what it could not send piles up).
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._flush_scheduled = False
        #: Set by the protocol while nothing of the current response has been sent: the
        #: held head and the first body piece then leave at once.
        self.response_unsent = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold ``data`` until the next step (or send what is held, past :data:`FLUSH_BYTES`)."""
        if not data:
            return
        self._held.append(bytes(data))
        self._held_bytes += len(data)
        if self._held_bytes >= FLUSH_BYTES or (self.response_unsent and len(self._held) > 1):
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send what is held, in one write."""
        if not self._held:
            return
        self.response_unsent = False
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        self._held_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self.transport.get_write_buffer_size()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        """Send what is held, then close."""
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        """Drop what is held and close at once."""
        self._held.clear()
        self._held_bytes = 0
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescedWrites` transport; a response's
    head leaves with its first body piece, and a finished response is sent at once (a
    plain JSON answer is one write: headers and body)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        writes = CoalescedWrites(transport)
        writes.response_unsent = True
        super().connection_made(writes)  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        self.transport.response_unsent = True  # type: ignore[attr-defined]
        super().on_response_complete()
