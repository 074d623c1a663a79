"""The request path's HTTP/1.1 client against real servers on 127.0.0.1 that answer with
exactly the bytes each test scripts: keep-alive, framing, encodings, failures, timeouts,
the connection cap and TLS."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelyard.gateway import http1_client
from modelyard.gateway.adapters.wire import post_json, post_sse
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.http1_client import Http1Client, Http1Error
from modelyard.gateway.upstream_errors import UpstreamError

BODY = b'{"model": "m", "messages": []}'

#: What the server does with one request: write an answer (or not) to the writer.
Answer = Callable[[bytes, asyncio.StreamWriter, int], Awaitable[None]]


class Server:
    """A raw TCP server reading HTTP/1.1 requests and answering each with ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                served += 1
                await self.answer(request, writer, served)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def serving(answer: Answer, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


def url(server: Server, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.port}/v1/chat/completions?x=1"


def answer_with(*parts: bytes, close: bool = False) -> Answer:
    async def answer(request: bytes, writer: asyncio.StreamWriter, served: int) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
        if close:
            writer.close()

    return answer


def plain(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n" % len(body) + b"".join(extra)
    return head + b"\r\n" + body


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    http = Http1Client(connect_timeout=2)
    yield http
    await http.aclose()


async def test_keeps_the_connection_and_sends_a_well_formed_request(client: Http1Client) -> None:
    async with serving(answer_with(plain(b'{"ok": 1}', b"x-a: 1\r\n"))) as server:
        for _ in range(5):
            answer = await client.post(
                url(server), headers={"authorization": "Bearer k"}, body=BODY, timeout=5
            )
            assert (answer.status, answer.body, answer.headers["x-a"]) == (200, b'{"ok": 1}', "1")
    assert server.connections == 1 and len(server.requests) == 5
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions?x=1 HTTP/1.1"
    assert f"host: 127.0.0.1:{server.port}".encode() in lines
    assert b"authorization: Bearer k" in lines and body == BODY


async def test_chunked_and_gzip_answers_are_decoded_whole_and_streamed(
    client: Http1Client,
) -> None:
    packed = gzip.compress(b"data: 1\n\n" * 500)
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(packed[i : i + 700]), packed[i : i + 700])
        for i in range(0, len(packed), 700)
    )
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-encoding: gzip\r\n\r\n"
    async with serving(answer_with(head, chunks, b"0\r\n\r\n")) as server:
        whole = await client.post(url(server), headers={}, body=BODY, timeout=5)
        async with client.stream(url(server), headers={}, body=BODY) as answer:
            pieces = [piece async for piece in answer]
    assert whole.body == b"data: 1\n\n" * 500
    assert b"".join(pieces) == whole.body
    assert server.connections == 1  # both answers were read to their end


async def test_a_body_until_close_is_read_whole_and_the_connection_is_not_reused(
    client: Http1Client,
) -> None:
    answer = answer_with(b"HTTP/1.1 200 OK\r\n\r\n", b"first part, ", b"second part", close=True)
    async with serving(answer) as server:
        for _ in range(2):
            got = await client.post(url(server), headers={}, body=BODY, timeout=5)
            assert got.body == b"first part, second part"
    assert server.connections == 2


async def test_a_reused_connection_the_server_dropped_is_retried_once_on_a_new_one(
    client: Http1Client,
) -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter, served: int) -> None:
        if served == 1:
            writer.write(plain(b"fine"))
        else:
            writer.close()  # read the second request on this connection, then hung up

    async with serving(answer) as server:
        assert (await client.post(url(server), headers={}, body=BODY, timeout=5)).body == b"fine"
        assert (await client.post(url(server), headers={}, body=BODY, timeout=5)).body == b"fine"
    assert server.connections == 2 and len(server.requests) == 3


async def test_a_new_connection_closed_before_answering_is_an_error_not_a_retry(
    client: Http1Client,
) -> None:
    async with serving(answer_with(close=True)) as server:
        with pytest.raises(Http1Error, match="closed the connection before answering"):
            await client.post(url(server), headers={}, body=BODY, timeout=5)
    assert server.connections == 1


async def test_a_body_cut_short_or_a_malformed_answer_fails(client: Http1Client) -> None:
    cut = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 10
    async with serving(answer_with(cut, close=True)) as server:
        with pytest.raises(Http1Error, match="during the answer"):
            await client.post(url(server), headers={}, body=BODY, timeout=5)
    async with serving(answer_with(b"HELLO there\r\n\r\n")) as server:
        with pytest.raises(Http1Error, match=r"not valid HTTP/1\.1"):
            await client.post(url(server), headers={}, body=BODY, timeout=5)
    br = plain(b"??", b"content-encoding: br\r\n")
    async with serving(answer_with(br)) as server:
        with pytest.raises(Http1Error, match="encoded as 'br'"):
            await client.post(url(server), headers={}, body=BODY, timeout=5)


async def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_quoted(
    client: Http1Client,
) -> None:
    async with serving(answer_with(plain(b"{}"))) as server:
        with_user = f"http://team%40x:s3cret-canary@127.0.0.1:{server.port}/v1/chat/completions"
        await client.post(with_user, headers={}, body=BODY, timeout=5)
    assert b"authorization: Basic dGVhbUB4OnMzY3JldC1jYW5hcnk=\r\n" in server.requests[0]
    with pytest.raises(Http1Error) as caught:
        await client.post("ftp://u:s3cret-canary@host/x", headers={}, body=BODY, timeout=5)
    with pytest.raises(Http1Error) as bad_port:
        await client.post("http://u:s3cret-canary@host:99999/x", headers={}, body=BODY, timeout=5)
    for error in (caught.value, bad_port.value):
        assert "s3cret-canary" not in str(error) and "upstream URL" in str(error)


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    client: Http1Client,
) -> None:
    async with serving(answer_with(plain(b"{}"))) as server:
        with pytest.raises(Http1Error, match="line break"):
            await client.post(
                url(server), headers={"x-key": "k\r\nx-evil: 1"}, body=BODY, timeout=5
            )
    assert server.requests == []


async def test_timeouts_whole_answer_and_each_read_of_a_stream(client: Http1Client) -> None:
    async def stall(request: bytes, writer: asyncio.StreamWriter, served: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await asyncio.sleep(3)

    async with serving(stall) as server:
        with pytest.raises(TimeoutError, match=r"no answer within 0\.3 s"):
            await client.post(url(server), headers={}, body=BODY, timeout=0.3)
        got = []
        with pytest.raises(TimeoutError, match=r"no data within 0\.3 s"):
            async with client.stream(url(server), headers={}, body=BODY, read_timeout=0.3) as a:
                async for piece in a:
                    got.append(piece)
    assert got == [b"first"]


async def test_at_most_the_cap_of_connections_per_origin(
    client: Http1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http1_client, "CONNECTIONS_PER_ORIGIN", 2)

    async def slow(request: bytes, writer: asyncio.StreamWriter, served: int) -> None:
        await asyncio.sleep(0.05)
        writer.write(plain(b"ok"))

    async with serving(slow) as server:
        answers = await asyncio.gather(
            *(client.post(url(server), headers={}, body=BODY, timeout=5) for _ in range(8))
        )
    assert [answer.body for answer in answers] == [b"ok"] * 8
    assert server.most_open == 2 and server.connections == 2


async def test_an_abandoned_stream_closes_its_connection_and_idle_ones_expire(
    client: Http1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    async with serving(answer_with(head, b"3\r\none\r\n")) as server:
        async with client.stream(url(server), headers={}, body=BODY) as answer:
            async for _ in answer:
                break
        async with client.stream(url(server), headers={}, body=BODY) as answer:
            async for _ in answer:
                break
    assert server.connections == 2
    monkeypatch.setattr(http1_client, "KEEPALIVE_SECONDS", 0.0)
    async with serving(answer_with(plain(b"ok"))) as server:
        for _ in range(2):
            await client.post(url(server), headers={}, body=BODY, timeout=5)
            await asyncio.sleep(0.01)
    assert server.connections == 2


async def test_a_stream_read_to_its_last_event_keeps_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """post_sse stops at ``[DONE]``; the chunked body's end, a moment later, is waited for
    in the background so that the next call reuses the connection, within a bound."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    events = b'data: {"n": 1}\n\ndata: [DONE]\n\n'
    chunk = b"%x\r\n%s\r\n" % (len(events), events)

    async def late_end(request: bytes, writer: asyncio.StreamWriter, served: int) -> None:
        writer.write(head + b"transfer-encoding: chunked\r\n\r\n" + chunk)
        await asyncio.sleep(0.05 if served < 3 else 1)
        writer.write(b"0\r\n\r\n")

    monkeypatch.setattr(http1_client, "_DRAIN_SECONDS", 0.3)
    http = UpstreamHttp(connect_timeout=2)
    try:
        async with serving(late_end) as server:
            for _ in range(3):
                got = [e async for e in post_sse(http, url(server), headers={}, body={}, timeout=5)]
                assert got == [{"n": 1}]
                await asyncio.sleep(0.1)
                assert server.connections == 1  # the first two ended within the bound
            await asyncio.sleep(0.3)
            assert [e async for e in post_sse(http, url(server), headers={}, body={}, timeout=5)]
        assert server.connections == 2  # the third's end came too late: closed
    finally:
        await http.aclose()


async def test_a_large_stream_read_slowly_pauses_reading_and_arrives_whole(
    client: Http1Client,
) -> None:
    payload = bytes(range(256)) * 64 * 1024  # 16 MiB: the reader falls behind
    async with serving(answer_with(plain(payload))) as server:
        got = bytearray()
        async with client.stream(url(server), headers={}, body=BODY) as answer:
            held = []
            async for piece in answer:
                got += piece
                await asyncio.sleep(0.02)  # the server keeps writing meanwhile
                held.append(answer._connection.buffered)
    assert bytes(got) == payload
    # Reading stopped once a read's worth past the high-water mark was held.
    assert max(held) <= http1_client._HIGH_WATER + 256 * 1024, max(held)


def _certificate(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 with a self-signed certificate, and that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelyard test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


async def test_tls_with_the_trust_store_and_an_untrusted_certificate_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context, cert_file = _certificate(tmp_path)
    async with serving(answer_with(plain(b"secure")), tls=context) as server:
        untrusting = Http1Client(connect_timeout=2)
        with pytest.raises(Http1Error, match=r"Cannot connect to host 127\.0\.0\.1"):
            await untrusting.post(url(server, "https"), headers={}, body=BODY, timeout=5)
        await untrusting.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # an operator's private CA
        trusting = Http1Client(connect_timeout=2)
        answer = await trusting.post(url(server, "https"), headers={}, body=BODY, timeout=5)
        await trusting.aclose()
    assert answer.body == b"secure" and server.requests[0].startswith(b"POST /v1/chat")


async def test_the_wire_functions_classify_its_failures() -> None:
    http = UpstreamHttp(connect_timeout=2)
    try:
        async with serving(answer_with(close=True)) as server:
            with pytest.raises(UpstreamError) as caught:
                await post_json(http, url(server), headers={}, body={}, timeout=5)
            assert caught.value.category == "connection"
        refusal = b"HTTP/1.1 429 Too Many\r\nretry-after: 7\r\ncontent-length: 31\r\n\r\n"
        body = b'{"error": {"message": "slow!"}}'
        async with serving(answer_with(refusal + body)) as server:
            with pytest.raises(UpstreamError) as caught:
                await post_json(http, url(server), headers={}, body={}, timeout=5)
            assert (caught.value.category, caught.value.retry_after) == ("rate_limited", 7.0)
            with pytest.raises(UpstreamError) as caught:
                async for _ in post_sse(http, url(server), headers={}, body={}, timeout=5):
                    pass
            assert "slow!" in str(caught.value)
    finally:
        await http.aclose()
