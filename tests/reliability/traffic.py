"""Chat traffic from client threads that notes when each answer arrived, to compare with
what the server recorded after it was killed."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

__all__ = ["Answer", "BackgroundTraffic"]


@dataclass(frozen=True)
class Answer:
    request_id: str
    status: int
    #: ``time.monotonic()`` once the whole answer was read.
    at: float


class BackgroundTraffic:
    """``clients`` threads, each sending chat requests one after another until stopped.

    Request ids are ``{prefix}{client}-{n}``; a request that gets no answer (the server is
    gone) is counted in :attr:`unanswered`, and its client waits a moment before the next.
    """

    def __init__(
        self, base_url: str, token: str, *, model: str, clients: int = 4, prefix: str = "bg-"
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.model = model
        self.clients = clients
        self.prefix = prefix
        self.answers: list[Answer] = []
        self.sent: set[str] = set()
        self.unanswered = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def ok(self) -> list[Answer]:
        with self._lock:
            return [answer for answer in self.answers if answer.status == 200]

    def _client(self, number: int) -> None:
        headers = {"authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as http:
            n = 0
            while not self._stop.is_set():
                request_id = f"{self.prefix}{number}-{n:06d}"
                n += 1
                body = {
                    "model": self.model,
                    "messages": [{"role": "user", "content": f"request {request_id}"}],
                }
                with self._lock:
                    self.sent.add(request_id)
                try:
                    response = http.post(
                        "/v1/chat/completions", json=body, headers={"x-request-id": request_id}
                    )
                except httpx.TransportError:
                    with self._lock:
                        self.unanswered += 1
                    self._stop.wait(0.05)
                    continue
                answer = Answer(request_id, response.status_code, time.monotonic())
                with self._lock:
                    self.answers.append(answer)

    def start(self) -> Self:
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True)
            for n in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
