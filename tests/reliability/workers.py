"""Sending a request to one chosen worker of a multi-worker server.

The workers share one listening socket and the kernel hands each new connection to one
of them; nothing in a response says which. So a fresh connection is opened, the worker
that accepted it is looked up in ``/proc`` (which process holds the server end of that
TCP connection), and the connection is used only when it is the wanted worker — else it
is closed unused and another is opened. No debug header is needed in the product.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any

from tests.reliability.procfs import owner_of_connection
from tests.reliability.server import ServerProcess

__all__ = ["Reply", "request_on"]

#: Fresh connections tried before giving up on reaching a worker.
MAX_CONNECTIONS = 200
#: Seconds to wait for a worker to accept a connection.
ACCEPT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Reply:
    worker: int
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _accepted_by(server: ServerProcess, client_port: int, workers: list[int]) -> int:
    deadline = time.monotonic() + ACCEPT_TIMEOUT
    while True:
        owner = owner_of_connection(server.port, client_port, workers)
        if owner is not None:
            return owner
        if time.monotonic() > deadline:
            raise AssertionError(f"no worker of {workers} accepted the connection")
        time.sleep(0.005)


def request_on(
    server: ServerProcess,
    worker: int,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """``method path`` on a new connection accepted by ``worker`` (a pid)."""
    workers = server.worker_pids()
    assert worker in workers, f"{worker} is not a worker of the server: {workers}"
    sent_headers = {"content-type": "application/json", **(headers or {})}
    payload = None if body is None else json.dumps(body).encode()
    for _ in range(MAX_CONNECTIONS):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            connection.connect()
            assert connection.sock is not None
            client_port = connection.sock.getsockname()[1]
            if _accepted_by(server, client_port, workers) != worker:
                continue
            connection.request(method, path, body=payload, headers=sent_headers)
            response = connection.getresponse()
            data = response.read()
            received = {name.lower(): value for name, value in response.getheaders()}
            return Reply(worker, response.status, received, data)
        finally:
            connection.close()
    raise AssertionError(f"{MAX_CONNECTIONS} connections, none accepted by worker {worker}")
