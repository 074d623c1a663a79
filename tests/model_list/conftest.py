"""Fixtures for the model list: two users with API tokens and the openai SDK as their
clients, a staff token for the admin API, and a fake OpenAI behind an admin provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.db.models import User
from tests.conftest import refuse_canaries
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.helpers import bearer, make_token, make_user


@dataclass(frozen=True)
class Caller:
    """A user of the API: its headers and the openai SDK speaking for it."""

    user: User
    headers: dict[str, str]
    sdk: openai.AsyncOpenAI


@pytest.fixture
def upstream() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as client:
        yield client


async def _caller(database: Database, http: httpx.AsyncClient, email: str) -> Caller:
    user = await make_user(database, email)
    token = await make_token(database, user)
    sdk = openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=token, http_client=http, max_retries=0
    )
    return Caller(user, bearer(token), sdk)


@pytest.fixture
async def alice(database: Database, http: httpx.AsyncClient) -> Caller:
    return await _caller(database, http, "alice@example.com")


@pytest.fixture
async def bob(database: Database, http: httpx.AsyncClient) -> Caller:
    return await _caller(database, http, "bob@example.com")


@pytest.fixture
async def staff(database: Database) -> dict[str, str]:
    user = await make_user(database, "staff@example.com", staff=True)
    return bearer(await make_token(database, user))


@pytest.fixture
async def openai_provider(database: Database, upstream: ChatOpenAI) -> int:
    """An admin's OpenAI provider (every user may call OpenAI through it)."""
    return await add_provider(database, "team openai", upstream.base_url, OPENAI_KEY)


async def add_route(
    http: httpx.AsyncClient, staff: dict[str, str], name: str, targets: list[dict[str, Any]]
) -> None:
    """What an admin does to offer a route (through the admin API)."""
    created = await http.post(
        "/v2/admin/routes", json={"name": name, "targets": targets}, headers=staff
    )
    assert created.status_code == 201, created.text
