"""Fixtures for the Responses API: a tool-calling fake OpenAI as the default provider, the
official `openai` SDK as the client, and a second user with an SDK of their own.

The provider is configured as an OpenAI-compatible URL (models ``openai_compatible/…``),
so these tests exercise the translated path (chat completions); the native pass-through
to an ``openai`` provider is ``test_responses_native.py``'s."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from modelyard.db.engine import Database
from tests.fakes.fixtures import OPENAI_KEY
from tests.gateway.conftest import add_provider, asgi_http, sdk, user_token
from tests.helpers import make_token, make_user
from tests.responses.tooling_openai import ToolingOpenAI

__all__ = ["asgi_http", "other_sdk", "sdk", "upstream", "user_token"]


@pytest.fixture
def upstream() -> Iterator[ToolingOpenAI]:
    with ToolingOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture(autouse=True)
async def openai_provider(database: Database, upstream: ToolingOpenAI) -> int:
    return await add_provider(
        database,
        "fake openai",
        upstream.base_url,
        OPENAI_KEY,
        kind="openai_compatible",
        default=True,
    )


@pytest.fixture
async def other_sdk(asgi_http: httpx.AsyncClient, database: Database) -> openai.AsyncOpenAI:
    """The SDK of a second user."""
    token = await make_token(database, await make_user(database, "other@example.com"))
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=token, http_client=asgi_http, max_retries=0
    )
