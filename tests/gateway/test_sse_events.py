"""An upstream's server-sent events, however its bytes are split across reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
from aiohttp import web

from modelyard.gateway.adapters.sse_events import MAX_LINE_BYTES, SseDataDecoder
from modelyard.gateway.adapters.wire import post_sse
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.upstream_errors import UpstreamError

EVENTS = [{"index": index, "text": "é" * index} for index in range(12)]


def _body(events: list[object], newline: bytes = b"\n") -> bytes:
    parts = [b": keep-alive" + newline, b"event: message" + newline]
    for event in events:
        parts.append(b"data: " + orjson.dumps(event) + newline + newline)
    return b"".join(parts)


def _decode_in_pieces(body: bytes, size: int) -> list[object]:
    decoder = SseDataDecoder()
    events: list[object] = []
    for start in range(0, len(body), size):
        events += decoder.feed(body[start : start + size])
    return events + decoder.end()


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1 << 20])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_every_event_is_decoded_once_in_order_however_the_reads_split(
    size: int, newline: bytes
) -> None:
    assert _decode_in_pieces(_body(EVENTS, newline), size) == EVENTS


def test_nothing_after_done_is_decoded() -> None:
    decoder = SseDataDecoder()
    body = _body(EVENTS[:2]) + b"data: [DONE]\n\n" + _body(EVENTS[2:])
    assert decoder.feed(body) == EVENTS[:2]
    assert decoder.done
    assert decoder.feed(_body(EVENTS)) == []


def test_a_last_line_without_a_line_break_still_counts() -> None:
    decoder = SseDataDecoder()
    assert decoder.feed(b'data: {"a": 1}\n\ndata: {"b": 2}') == [{"a": 1}]
    assert decoder.end() == [{"b": 2}]
    assert decoder.end() == []


def test_empty_data_lines_and_other_fields_carry_nothing() -> None:
    decoder = SseDataDecoder()
    assert decoder.feed(b'data:\n\nid: 4\nretry: 10\ndata:{"a":1}\n\n') == [{"a": 1}]


def test_invalid_json_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamError) as caught:
        SseDataDecoder().feed(b"data: {not json}\n\n")
    assert caught.value.category == "protocol"


def test_a_line_that_never_ends_is_a_protocol_error_not_a_growing_buffer() -> None:
    decoder = SseDataDecoder()
    decoder.feed(b"data: ")
    for _ in range(16):
        decoder.feed(b"x" * (MAX_LINE_BYTES // 16 - 1))
    with pytest.raises(UpstreamError) as caught:
        decoder.feed(b"x" * 64)
    assert caught.value.category == "protocol"


@asynccontextmanager
async def _upstream(pieces: list[bytes]) -> AsyncIterator[str]:
    """A real HTTP server streaming ``pieces``, each in its own write, a moment apart."""

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0.001)
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        await runner.cleanup()


async def _post_sse(url: str) -> list[object]:
    http = UpstreamHttp()
    try:
        return [event async for event in post_sse(http, url, headers={}, body={}, timeout=5)]
    finally:
        await http.aclose()


async def test_a_real_stream_split_mid_line_and_with_an_event_over_128_kib() -> None:
    large = {"text": "y" * 300_000}
    body = _body([*EVENTS, large]) + b"data: [DONE]\n\n" + _body(EVENTS)
    pieces = [body[start : start + 5000] for start in range(0, len(body), 5000)]
    async with _upstream(pieces) as url:
        assert await _post_sse(url) == [*EVENTS, large]


async def test_a_real_stream_with_an_invalid_event_is_an_upstream_error() -> None:
    async with _upstream([_body(EVENTS[:1]), b"data: {oops\n\n"]) as url:
        with pytest.raises(UpstreamError) as caught:
            await _post_sse(url)
    assert caught.value.category == "protocol"
