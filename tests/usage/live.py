"""Helpers for tests where a client really goes away: the app served on 127.0.0.1 (an
in-process ASGI transport never tells the app that its client left), a slow fake OpenAI,
and waiting for the usage records the served app writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import orjson

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from tests.fakes.fixtures import OPENAI_KEY
from tests.polling import poll
from tests.usage.conftest import usage_rows
from tests.web.live import LiveServer, SlowChatOpenAI

__all__ = [
    "LONG_REPLY",
    "post_then_leave",
    "read_then_leave",
    "serve",
    "slow_openai",
    "wait_for_records",
]

#: 60 words, streamed one word a chunk: a stream that lasts while the client reads 3 chunks.
LONG_REPLY = " ".join(f"word{i}" for i in range(60))
#: Seconds the served app may take to write a usage record.
RECORD_TIMEOUT = 15.0


@contextmanager
def slow_openai(chunk_delay: float = 0.05) -> Iterator[SlowChatOpenAI]:
    """A fake OpenAI that streams :data:`LONG_REPLY` one word every ``chunk_delay`` s."""
    with SlowChatOpenAI(keys={OPENAI_KEY}) as fake:
        fake.scripted_reply = LONG_REPLY
        fake.stream_chunks = 60
        fake.chunk_delay = chunk_delay
        yield fake


@contextmanager
def serve(settings: Settings, **overrides: Any) -> Iterator[LiveServer]:
    """The whole app (lifespan included) on a free port of 127.0.0.1."""
    live_settings = settings.model_copy(update={"usage_flush_seconds": 0.1, **overrides})
    with LiveServer(create_app(live_settings, system_keys={})) as server:
        yield server


async def read_then_leave(stream: openai.AsyncStream[Any], count: int) -> list[Any]:
    """Read ``count`` chunks of ``stream``, then close the connection (the client leaves)."""
    chunks = []
    async for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == count:
            break
    await stream.close()
    return chunks


async def wait_for_records(database: Database, count: int) -> list[UsageRecord]:
    """The usage records once there are ``count`` of them (the served app writes them)."""
    return await poll(
        lambda: usage_rows(database), lambda rows: len(rows) >= count, timeout=RECORD_TIMEOUT
    )


async def post_then_leave(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str], count: int
) -> tuple[httpx.Headers, str]:
    """POST a streamed chat, read ``count`` chunks with text, then close the connection.

    Returns the response headers and the text read.
    """
    text = ""
    seen = 0
    async with http.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            for choice in orjson.loads(line[6:]).get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    text += piece
                    seen += 1
            if seen >= count:
                break
    return response.headers, text
