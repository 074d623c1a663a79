"""Fixtures for gateway tests: fake upstreams, an admin provider pointing at them, and the
official SDKs as clients of the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from modelyard.db.engine import Database
from modelyard.providers import records
from tests.conftest import refuse_canaries
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.redis_helpers import close_client, new_prefix, open_client
from tests.helpers import make_token, make_user


@pytest.fixture
def upstream() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture
async def user_token(database: Database) -> str:
    return await make_token(database, await make_user(database, "sdk@example.com"))


async def add_provider(
    database: Database,
    name: str,
    base_url: str,
    api_key: str,
    *,
    kind: str = "openai",
    default: bool = False,
) -> int:
    async with database.sessions() as session:
        provider = await records.create_provider(
            session,
            actor=None,
            values={
                "name": name,
                "kind": kind,
                "api_key": api_key,
                "base_url": base_url,
                "is_default": default,
            },
        )
        return provider.id


@pytest.fixture
async def openai_provider(database: Database, upstream: ChatOpenAI) -> int:
    return await add_provider(database, "fake openai", upstream.base_url, OPENAI_KEY, default=True)


@pytest.fixture
async def asgi_http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as http:
        yield http


@pytest.fixture
def sdk(asgi_http: httpx.AsyncClient, user_token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=user_token, http_client=asgi_http, max_retries=0
    )


@pytest.fixture
async def staff_sdk(asgi_http: httpx.AsyncClient, database: Database) -> openai.AsyncOpenAI:
    """The SDK as a staff member (who sees the per-target detail of upstream failures)."""
    token = await make_token(
        database, await make_user(database, "staff-sdk@example.com", staff=True)
    )
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=token, http_client=asgi_http, max_retries=0
    )


@pytest.fixture
def prefix() -> str:
    """A Redis key prefix of this test's own."""
    return new_prefix()


@pytest.fixture
async def redis_client(prefix: str) -> AsyncIterator[Redis]:
    """A connection to the local Redis; the test's keys are deleted afterwards."""
    client = await open_client()
    yield client
    await close_client(client, prefix)
