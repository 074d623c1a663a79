"""A real HTTP server on 127.0.0.1 for tests: any ASGI app under uvicorn, in a thread.

::

    with FakeServer(app) as server:
        httpx.get(f"{server.url}/v1/models")

The port is bound before the thread starts (``port=0`` picks a free one), so ``url`` is
known at once and no other process can take the port in between. Stopping is fast (a few
tenths of a second) even while requests are still in flight: those are cancelled.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

__all__ = ["FakeServer", "closed_port"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


class FakeServer:
    """Runs ``app`` under :class:`uvicorn.Server` in a daemon thread on ``host:port``."""

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, http: Any = "h11"
    ) -> None:
        self.app = app
        self.http = http  # uvicorn's ``http`` setting: a name, "module:Class" or a class
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        if self.port is None:
            raise RuntimeError("the fake server is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Bind the port, start serving and wait until the server accepts connections."""
        if self.running:
            raise RuntimeError("the fake server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            loop="asyncio",
            http=self.http,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"fake-server-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(_STOP_TIMEOUT)
                sock.close()
                self._server = self._thread = None
                self.port = None
                raise RuntimeError("the fake server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving, cancel requests in flight and wait for the thread to end."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        server.force_exit = True  # do not wait for slow (delayed) requests to finish
        thread.join(_STOP_TIMEOUT)
        self._server = None
        if thread.is_alive():
            raise RuntimeError(f"the fake server on port {self.port} did not stop")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, then released), for connection-refused tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port
