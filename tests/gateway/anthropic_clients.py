"""The official `anthropic` SDK as a client of the app; import the fixtures a module uses::

from tests.gateway.anthropic_clients import asgi_http2 as asgi_http2, claude as claude
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import pytest
from fastapi import FastAPI

from tests.conftest import refuse_canaries

__all__ = ["anthropic_error", "asgi_http2", "claude", "sse_events"]


@pytest.fixture
async def asgi_http2(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    """The `anthropic` SDK speaks `httpx2`, not `httpx`: its own ASGI client."""
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as http:
        yield http


@pytest.fixture
def claude(asgi_http2: httpx2.AsyncClient, user_token: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url="http://testserver", api_key=user_token, http_client=asgi_http2, max_retries=0
    )


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of a raw SSE body, checking each data names its event."""
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        events.append((lines["event"], data))
    return events


def anthropic_error(error: anthropic.APIStatusError, kind: str) -> bool:
    """Whether ``error``'s body is exactly Anthropic's error shape, of type ``kind``."""
    body = error.body
    assert isinstance(body, dict) and set(body) == {"type", "error"}, body
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    assert body["error"]["message"] in error.message
    return bool(body["error"]["type"] == kind)
