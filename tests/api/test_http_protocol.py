"""The coalescing HTTP protocol: what one event-loop step writes leaves in one ``write``,
nothing is lost or reordered, and real uvicorn serves real clients with it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelyard.api.http_protocol import (
    FLUSH_BYTES,
    HTTP_PROTOCOL,
    CoalescedWrites,
    CoalescingHttpToolsProtocol,
)
from tests.fakes.server import FakeServer

CHUNKS = [f"data: chunk {index}\n\n".encode() for index in range(16)]


class RecordingTransport(asyncio.Transport):
    """Keeps every ``write`` it is given, and whether it was closed or aborted."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


async def _next_step() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_step_leave_together_in_order_at_the_next() -> None:
    inner = RecordingTransport()
    writes = CoalescedWrites(inner)
    for chunk in CHUNKS:
        writes.write(chunk)
    assert inner.writes == []
    assert writes.get_write_buffer_size() == sum(map(len, CHUNKS))
    await _next_step()
    assert inner.writes == [b"".join(CHUNKS)]
    writes.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
    writes.write(b"")
    await _next_step()
    assert inner.writes[1:] == [b"abc"]
    assert writes.get_write_buffer_size() == 0


async def test_a_large_write_is_sent_at_once() -> None:
    inner = RecordingTransport()
    writes = CoalescedWrites(inner)
    writes.write(b"head")
    writes.write(b"x" * FLUSH_BYTES)
    assert inner.writes == [b"head" + b"x" * FLUSH_BYTES]
    await _next_step()
    assert len(inner.writes) == 1


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    inner = RecordingTransport()
    writes = CoalescedWrites(inner)
    writes.write(b"last words")
    writes.close()
    assert inner.writes == [b"last words"] and inner.closed

    inner = RecordingTransport()
    writes = CoalescedWrites(inner)
    writes.write(b"never sent")
    writes.abort()
    await _next_step()
    assert inner.writes == [] and inner.aborted
    assert writes.is_closing()


async def test_nothing_is_written_to_a_closing_transport() -> None:
    inner = RecordingTransport()
    writes = CoalescedWrites(inner)
    writes.write(b"late")
    inner.closed = True
    await _next_step()
    assert inner.writes == []


async def test_other_attributes_are_the_wrapped_transports() -> None:
    inner = RecordingTransport()
    inner.set_write_buffer_limits = lambda high=None, low=None: None  # type: ignore[method-assign]
    writes = CoalescedWrites(inner)
    assert writes.get_extra_info("peername", "none") == "none"
    assert writes.set_write_buffer_limits is inner.set_write_buffer_limits


def test_the_setting_names_the_coalescing_protocol() -> None:
    assert import_from_string(HTTP_PROTOCOL) is CoalescingHttpToolsProtocol


class CountedWrites:
    """A transport proxy that counts the writes reaching the socket."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes = 0
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.data.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _counting(protocol: type[HttpToolsProtocol]) -> tuple[type[HttpToolsProtocol], list[Any]]:
    connections: list[CountedWrites] = []

    class Counting(protocol):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            counted = CountedWrites(transport)
            connections.append(counted)
            super().connection_made(counted)

    return Counting, connections


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"path": "%s"}' % scope["path"].encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _stream_writes(protocol: type[HttpToolsProtocol]) -> list[bytes]:
    counting, connections = _counting(protocol)
    with FakeServer(_app, http=counting) as server, httpx.Client(base_url=server.url) as client:
        response = client.get("/stream")
        assert response.status_code == 200
        assert response.content == b"".join(CHUNKS)
    (connection,) = connections
    data: list[bytes] = connection.data
    return data


def test_a_stream_relayed_in_one_step_leaves_in_two_writes_the_first_chunk_at_once() -> None:
    assert len(_stream_writes(HttpToolsProtocol)) == len(CHUNKS) + 2
    first, rest = _stream_writes(CoalescingHttpToolsProtocol)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(CHUNKS[0] + b"\r\n")
    assert rest.count(b"data: chunk") == len(CHUNKS) - 1 and rest.endswith(b"0\r\n\r\n")


async def test_while_a_response_is_unsent_its_head_and_first_piece_leave_at_once() -> None:
    inner = RecordingTransport()
    writes = CoalescedWrites(inner)
    writes.response_unsent = True
    writes.write(b"head")
    assert inner.writes == []
    writes.write(b"first")
    assert inner.writes == [b"headfirst"]
    writes.write(b"second")
    writes.write(b"third")
    assert inner.writes == [b"headfirst"]
    await _next_step()
    assert inner.writes == [b"headfirst", b"secondthird"]


def test_json_answers_are_one_write_each_on_a_kept_alive_connection() -> None:
    counting, connections = _counting(CoalescingHttpToolsProtocol)
    with FakeServer(_app, http=counting) as server, httpx.Client(base_url=server.url) as client:
        first = client.get("/first")
        assert first.json() == {"path": "/first"}
        assert connections[0].writes == 1
        second = client.get("/second")
        assert second.json() == {"path": "/second"}
        streamed = client.get("/stream")
        assert streamed.content == b"".join(CHUNKS)
    assert len(connections) == 1
    assert connections[0].writes == 4  # the stream's head and first chunk, then the rest
