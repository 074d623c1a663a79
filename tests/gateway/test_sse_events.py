"""An upstream's server-sent events, however its bytes are split across reads."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from modelyard.gateway.adapters.sse_events import MAX_LINE_BYTES, SseDataDecoder
from modelyard.gateway.adapters.wire import post_sse
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.upstream_errors import UpstreamError
from tests.fakes.server import FakeServer

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


def _upstream(pieces: list[bytes]) -> FakeServer:
    """A real HTTP server streaming ``pieces``, each in its own write, a moment apart."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0.001)
        await send({"type": "http.response.body", "body": b""})

    return FakeServer(app)


async def _post_sse(base_url: str) -> list[object]:
    http = UpstreamHttp()
    try:
        url = f"{base_url}/v1/chat/completions"
        return [event async for event in post_sse(http, url, headers={}, body={}, timeout=5)]
    finally:
        await http.aclose()


async def test_a_real_stream_split_mid_line_and_with_an_event_over_128_kib() -> None:
    large = {"text": "y" * 300_000}
    body = _body([*EVENTS, large]) + b"data: [DONE]\n\n" + _body(EVENTS)
    pieces = [body[start : start + 5000] for start in range(0, len(body), 5000)]
    with _upstream(pieces) as upstream:
        assert await _post_sse(upstream.url) == [*EVENTS, large]


async def test_a_real_stream_with_an_invalid_event_is_an_upstream_error() -> None:
    with _upstream([_body(EVENTS[:1]), b"data: {oops\n\n"]) as upstream:
        with pytest.raises(UpstreamError) as caught:
            await _post_sse(upstream.url)
    assert caught.value.category == "protocol"
