"""An upstream HTTP session that never touches the network: a function decides each reply."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson

from modelyard.gateway.http import UpstreamHttp

__all__ = ["RecordingHttp"]


class _Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.headers: dict[str, str] = {"content-type": "application/json"}
        self._body = orjson.dumps(body)

    async def read(self) -> bytes:
        return self._body


class _Session:
    """Answers every request with ``answer(method, url)`` (a status and a JSON body)."""

    def __init__(self, answer: Callable[[str, str], tuple[int, Any]]) -> None:
        self.answer = answer

    @asynccontextmanager
    async def request(self, method: str, url: str, **_: Any) -> AsyncIterator[_Answer]:
        yield _Answer(*self.answer(method, url))


class RecordingHttp(UpstreamHttp):
    """An upstream session that never touches the network: ``answer`` decides each reply."""

    def __init__(self, answer: Callable[[str, str], tuple[int, Any]]) -> None:
        super().__init__()
        self._fake = _Session(answer)

    @property
    def session(self) -> Any:
        return self._fake
