"""The whole application served by uvicorn on 127.0.0.1, in a thread, with its lifespan
(usage writer, job runner) running as in production; and a fake OpenAI whose streams
can be slowed down (to see an answer arrive, and to stop it)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import uvicorn

from modelyard.api.http_protocol import HTTP_PROTOCOL
from tests.fakes.openai_chat import ChatOpenAI

__all__ = ["LiveServer", "SlowChatOpenAI"]

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


class LiveServer:
    """``with LiveServer(app) as server: server.url`` (lifespan on, a free port)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.port is not None, "the server is not running"
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            loop="asyncio",
            http=HTTP_PROTOCOL,  # what `modelyard serve` runs
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise RuntimeError("the app did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(_STOP_TIMEOUT)
        assert not self._thread.is_alive(), "the app did not stop"


class SlowChatOpenAI(ChatOpenAI):
    """The fake OpenAI; ``chunk_delay`` seconds pass between the chunks of a stream."""

    chunk_delay: float = 0.0

    async def _stream(self, body: dict[str, Any], reply: str) -> AsyncIterator[bytes]:
        async for piece in super()._stream(body, reply):
            yield piece
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
