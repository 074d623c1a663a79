"""The gateway's HTTP/1.1 client for the request path: keep-alive connections per origin
over asyncio protocols, answers parsed by httptools (the parser uvicorn serves with).

aiohttp's ``ClientSession`` cost a worker about 78 µs of CPU per upstream call against a
fast upstream on 127.0.0.1, most of it in request set-up (URL objects, header
multidicts, payload objects, timers, tracing hooks) that a JSON POST to a provider does
not use; this client costs about 21 µs (``docs/benchmarks.md``, 2026-12-07). It does only
what the adapters ask of it: ``POST`` a body, read the answer whole (:meth:`Http1Client.post`)
or piece by piece (:meth:`Http1Client.stream`). Calls off the request path (multipart
uploads, other methods, query parameters) keep aiohttp
(:attr:`~modelyard.gateway.http.UpstreamHttp.session`).

What it does as aiohttp did: at most :data:`CONNECTIONS_PER_ORIGIN` connections per
origin (more callers wait for one), idle connections closed after
:data:`KEEPALIVE_SECONDS`, TLS with the system's trust store, gzip and deflate answers
decoded, chunked and read-until-close bodies, a connect timeout, basic credentials from
the URL's user info (never quoted in an error). And one thing more: a
call whose reused connection turns out to have been closed by the server before any byte
of the answer came back is sent once more on a new connection (a keep-alive race, not a
failure of the upstream). Every failure is an :class:`Http1Error` (a ``ConnectionError``),
so :mod:`~modelyard.gateway.adapters.wire` classifies it as ``connection``; a timeout is
``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import httptools
import orjson

__all__ = [
    "CONNECTIONS_PER_ORIGIN",
    "KEEPALIVE_SECONDS",
    "Http1Answer",
    "Http1Client",
    "Http1Error",
    "Http1Stream",
]

#: Connections kept open, or being opened, per origin (scheme, host, port).
CONNECTIONS_PER_ORIGIN = 256
#: An idle connection older than this is closed rather than reused (aiohttp's default).
KEEPALIVE_SECONDS = 15.0
#: Bytes of an answer held unread before the connection stops reading (flow control).
_HIGH_WATER = 256 * 1024
#: How long, and how many bytes, the rest of an answer the caller no longer reads is
#: waited for to keep its connection (:meth:`Http1Stream.close` with ``drain``).
_DRAIN_SECONDS = 1.0
_DRAIN_BYTES = 64 * 1024
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Http1Error(ConnectionError):
    """The connection failed, or what came back was not a whole HTTP/1.1 answer."""


class Http1Answer(NamedTuple):
    """An answer read whole, whatever its status: status, headers and decoded body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The decoded body; ``ValueError`` when it is not JSON."""
        return orjson.loads(self.body)


class _Origin(NamedTuple):
    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    host_header: str
    #: Basic credentials from the URL's user info (``https://user:pass@host``), if any.
    basic_auth: str | None


@lru_cache(maxsize=4096)
def _split(url: str) -> tuple[_Origin, str]:
    """The origin of ``url`` and its request target (path and query)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:  # the URL may hold credentials
        raise Http1Error(f"the upstream URL is not an http(s) URL with a host (scheme {scheme!r})")
    tls = scheme == "https"
    host = parts.hostname
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise Http1Error("the upstream URL's port is not a number from 0 to 65535") from None
    basic_auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        basic_auth = "Basic " + base64.b64encode(pair.encode()).decode()
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if parts.port is None else f"{shown}:{port}"
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return _Origin((scheme, host, port), host, port, tls, host_header, basic_auth), target


def _head(origin: _Origin, target: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [
        f"POST {target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"
        f"content-length: {length}\r\naccept-encoding: gzip, deflate\r\n"
    ]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise Http1Error(f"the header {name.strip()!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    if origin.basic_auth is not None and "authorization" not in headers:
        lines.append(f"authorization: {origin.basic_auth}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode()


class _Connection(asyncio.Protocol):
    """One keep-alive connection: the answer in progress, its body buffered for the reader."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._loop = asyncio.get_running_loop()
        self._reset()

    def _reset(self) -> None:
        self.active = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.received = False
        self.head_done = False
        self.complete = False
        self.until_close = False
        self.keep_alive = False
        self.error: Http1Error | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.draining: asyncio.TimerHandle | None = None

    # -- the caller's side ---------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Start an exchange: write the request (head and body)."""
        self._reset()
        self.active = True
        assert self.transport is not None
        self.transport.write(data)

    async def wait(self) -> None:
        """Until something changes: the head, a body piece, the end or an error."""
        self.waiter = self._loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def take(self) -> bytes:
        """Every buffered body piece, joined (reading resumes if it had paused)."""
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def drain(self) -> None:
        """Discard the rest of the answer as it comes, and go back to the pool once it is
        complete (closed instead past :data:`_DRAIN_SECONDS` or :data:`_DRAIN_BYTES`)."""
        self.take()
        self.draining = self._loop.call_later(_DRAIN_SECONDS, self.abort)

    def abort(self) -> None:
        if self.draining is not None:
            self.draining.cancel()
            self.draining = None
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.active:  # nothing asked for: the connection's state is unknown
            self.abort()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(Http1Error(f"the upstream's answer is not valid HTTP/1.1: {error}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.draining is not None:
            self.draining.cancel()
            self.draining = None
        self.pool.forget(self)
        if not self.active or self.complete:
            return
        if self.head_done and self.until_close and exc is None:
            self.on_message_complete()
            return
        where = "during the answer" if self.received else "before answering"
        self._fail(Http1Error(f"the upstream closed the connection {where}"))

    # -- httptools callbacks -------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # an informational answer: the real one follows
            self.headers = {}
            return
        self.status = status
        self.head_done = True
        self.until_close = (
            "content-length" not in self.headers
            and "chunked" not in self.headers.get("transfer-encoding", "")
            and status not in (204, 304)
        )
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.draining is not None:
            self.buffered += len(body)
            if self.buffered > _DRAIN_BYTES:
                self.abort()
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.head_done:
            return
        self.complete = True
        self.keep_alive = not self.until_close and self.parser.should_keep_alive()
        if self.draining is not None:
            self.draining.cancel()
            self.draining = None
            self.pool.release(self)
            return
        self._wake()

    def _fail(self, error: Http1Error) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    @property
    def reusable(self) -> bool:
        return self.keep_alive and not self.closed


class _Pool:
    """The connections of one origin: idle ones (most recent first) and a cap."""

    def __init__(self, client: Http1Client, origin: _Origin) -> None:
        self.client = client
        self.origin = origin
        self.idle: list[_Connection] = []
        self.open = 0
        self.waiting: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> tuple[_Connection, bool]:
        """A connection and whether it was reused."""
        while True:
            now = time.monotonic()
            while self.idle:
                connection = self.idle.pop()
                if connection.closed:
                    continue
                if now - connection.idle_since > KEEPALIVE_SECONDS:
                    connection.abort()
                    continue
                return connection, True
            if self.open < CONNECTIONS_PER_ORIGIN:
                self.open += 1
                try:
                    return await self._connect(), False
                except BaseException:
                    self.open -= 1
                    self._wake_one()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass the turn on
                raise

    async def _connect(self) -> _Connection:
        origin = self.origin
        loop = asyncio.get_running_loop()
        timeout = self.client.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self),
                    origin.host,
                    origin.port,
                    ssl=self.client.tls_context() if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None,
                )
        except TimeoutError:
            raise TimeoutError(f"no connection within {timeout:g} s") from None
        except (OSError, ssl.SSLError) as error:
            raise Http1Error(
                f"Cannot connect to host {origin.host}:{origin.port} ssl:{origin.tls} [{error}]"
            ) from None
        return connection

    def release(self, connection: _Connection) -> None:
        """Keep ``connection`` for the next call if it can carry one, else close it."""
        if connection.reusable:
            connection.active = False
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
            self._wake_one()
        else:
            connection.abort()

    def forget(self, connection: _Connection) -> None:
        """``connection`` is closed: its place under the cap is free."""
        if connection.transport is not None:
            self.open -= 1
            connection.transport = None
            self._wake_one()

    def _wake_one(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class Http1Stream:
    """An answer being read: status and headers, then the body piece by piece
    (``async for``, each read waiting at most ``read_timeout``) or whole (:meth:`read`).
    :meth:`close` (or leaving :meth:`Http1Client.stream`'s ``async with``) keeps the
    connection only when the body was read to its end."""

    def __init__(self, pool: _Pool, connection: _Connection, read_timeout: float | None):
        self._pool = pool
        self._connection = connection
        self._read_timeout = read_timeout
        self.status = connection.status
        self.headers: Mapping[str, str] = connection.headers
        encoding = connection.headers.get("content-encoding", "identity").strip().lower()
        self._decoder = None
        if encoding in _DECODERS:
            self._decoder = zlib.decompressobj(_DECODERS[encoding])
        elif encoding not in ("identity", ""):
            connection.abort()
            raise Http1Error(f"the upstream's answer is encoded as {encoding!r}, not supported")
        self._finished = False

    def close(self, *, drain: bool = False) -> None:
        """Give the connection back: reused if the body was read to its end; with
        ``drain`` (the caller has what it wanted and the answer ends soon, as an SSE
        stream does after its last event), also once the rest has come and been dropped."""
        if not self._finished:
            self._finished = True
            connection = self._connection
            if connection.complete and not connection.chunks:
                self._pool.release(connection)
            elif drain and connection.error is None and not connection.closed:
                connection.drain()
            else:
                connection.abort()

    def _decoded(self, data: bytes) -> bytes:
        if self._decoder is None:
            return data
        try:
            return self._decoder.decompress(data)
        except zlib.error as error:
            self._connection.abort()
            raise Http1Error(f"the upstream's compressed answer is damaged: {error}") from None

    async def _next(self) -> bytes | None:
        """The next body bytes, or None at the end."""
        connection = self._connection
        while True:
            if connection.chunks:
                return self._decoded(connection.take())
            if connection.complete:
                if self._decoder is not None and not self._decoder.eof:
                    rest, self._decoder = self._decoder.flush(), None
                    if rest:
                        return rest
                return None
            if connection.error is not None:
                raise connection.error
            try:
                async with asyncio.timeout(self._read_timeout):
                    await connection.wait()
            except TimeoutError:
                connection.abort()
                raise TimeoutError(f"no data within {self._read_timeout:g} s") from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while (data := await self._next()) is not None:
            if data:
                yield data

    async def read(self) -> bytes:
        """The rest of the body, decoded."""
        pieces = []
        while (data := await self._next()) is not None:
            pieces.append(data)
        return b"".join(pieces)


class Http1Client:
    """Connection pools per origin; create and use it inside one running event loop."""

    def __init__(self, *, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._tls: ssl.SSLContext | None = None

    def tls_context(self) -> ssl.SSLContext:
        """The system trust store's context, built once."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def _exchange(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[_Pool, _Connection]:
        """Send the request; return once the answer's head is in."""
        origin, target = _split(url)
        pool = self._pools.get(origin.key)
        if pool is None:
            pool = self._pools[origin.key] = _Pool(self, origin)
        data = _head(origin, target, headers, len(body)) + body
        may_retry = True
        while True:
            connection, reused = await pool.acquire()
            try:
                connection.send(data)
                while not connection.head_done:
                    if connection.error is not None:
                        raise connection.error
                    await connection.wait()
                return pool, connection
            except Http1Error:
                connection.abort()
                if not (may_retry and reused and not connection.received):
                    raise
                may_retry = False  # the server had closed the idle connection: a new one
            except BaseException:
                connection.abort()
                raise

    def stream(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes,
        read_timeout: float | None = None,
    ) -> _StreamOpening:
        """``async with client.stream(...) as answer``: the answer's head first, its body
        read as it comes. Waiting for the head counts as a read (``read_timeout``)."""
        return _StreamOpening(self, url, headers, body, read_timeout)

    async def post(
        self, url: str, *, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> Http1Answer:
        """POST ``body`` and read the answer whole, all within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                pool, connection = await self._exchange(url, headers, body)
                answer = Http1Stream(pool, connection, None)
                try:
                    payload = await answer.read()
                finally:
                    answer.close()
        except TimeoutError:
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        return Http1Answer(answer.status, answer.headers, payload)

    async def aclose(self) -> None:
        """Close every connection."""
        for pool in self._pools.values():
            for connection in pool.idle:
                connection.abort()
            pool.idle.clear()
        self._pools.clear()


class _StreamOpening:
    def __init__(
        self,
        client: Http1Client,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        read_timeout: float | None,
    ) -> None:
        self._args = (client, url, headers, body, read_timeout)
        self._stream: Http1Stream | None = None

    async def __aenter__(self) -> Http1Stream:
        client, url, headers, body, read_timeout = self._args
        try:
            async with asyncio.timeout(read_timeout):
                pool, connection = await client._exchange(url, headers, body)
        except TimeoutError:
            raise TimeoutError(f"no answer within {read_timeout:g} s") from None
        self._stream = Http1Stream(pool, connection, read_timeout)
        return self._stream

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            self._stream.close()
