"""The admin's default chat model: set through the staff API (audited; a name that is no
chat model is refused), what ``/chat`` opens a user's first chat with — unless the user
cannot use it, then their first chat model as without one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import AuditLogEntry
from tests.helpers import bearer, login, make_token, make_user
from tests.model_list.conftest import add_route

pytestmark = pytest.mark.usefixtures("openai_provider")
URL = "/v2/admin/settings/default-chat-model"


@pytest.fixture
async def browser(app: FastAPI, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in user's browser (cookies), not following redirects."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await make_user(database, "reader@example.com")
        await login(client, "reader@example.com")
        yield client


async def test_the_default_opens_a_new_chat_and_is_audited(
    http: httpx.AsyncClient,
    staff: dict[str, str],
    browser: httpx.AsyncClient,
    database: Database,
) -> None:
    await add_route(http, staff, "team-chat", [{"provider": "openai", "model": "gpt-4o-mini"}])
    assert (await http.get(URL, headers=staff)).json() == {"model": None}
    assert (await browser.get("/chat")).headers["location"] == "/language-models/team-chat"

    chosen = await http.put(URL, json={"model": "openai/gpt-4o"}, headers=staff)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json() == {"model": "openai/gpt-4o"}
    assert (await http.get(URL, headers=staff)).json() == {"model": "openai/gpt-4o"}
    assert (await browser.get("/chat")).headers["location"] == "/language-models/openai/gpt-4o"

    cleared = await http.put(URL, json={"model": None}, headers=staff)
    assert cleared.status_code == 200
    assert (await browser.get("/chat")).headers["location"] == "/language-models/team-chat"
    async with database.sessions() as session:
        rows = list(
            await session.scalars(
                select(AuditLogEntry)
                .where(AuditLogEntry.entity_type == "app_setting")
                .order_by(AuditLogEntry.id)
            )
        )
    assert [(row.action, row.actor_email, row.entity_name) for row in rows] == [
        ("update", "staff@example.com", "default_chat_model"),
        ("clear", "staff@example.com", "default_chat_model"),
    ]
    assert rows[0].detail == "default chat model: none -> openai/gpt-4o"


async def test_only_a_chat_model_the_staff_can_name_is_taken(
    http: httpx.AsyncClient, staff: dict[str, str], database: Database
) -> None:
    embedding = await http.put(URL, json={"model": "local/all-MiniLM-L6-v2"}, headers=staff)
    assert embedding.status_code == 400
    assert embedding.json()["error"]["code"] == "not_a_chat_model"
    missing = await http.put(URL, json={"model": "no-such-model"}, headers=staff)
    assert missing.status_code == 404
    extra = await http.put(URL, json={"model": "gpt-4o", "x": 1}, headers=staff)
    assert extra.status_code == 422
    user = bearer(await make_token(database, await make_user(database, "plain@example.com")))
    assert (await http.put(URL, json={"model": "gpt-4o"}, headers=user)).status_code == 403
    assert (await http.get(URL, headers=user)).status_code == 403
    assert (await http.get(URL, headers=staff)).json() == {"model": None}  # nothing kept


async def test_a_default_the_user_cannot_use_falls_back(
    http: httpx.AsyncClient, staff: dict[str, str], browser: httpx.AsyncClient
) -> None:
    """An Anthropic model the staff has a key for (their own) is no chat model of a user
    without one: the user's chat opens with their first chat model."""
    key = await http.patch(
        "/v2/users/me/api-key",
        json={"provider": "anthropic", "api_key": "sk-ant-staffkey0123456789abcdefghij"},
        headers=staff,
    )
    assert key.status_code == 200, key.text
    chosen = await http.put(URL, json={"model": "claude-sonnet-4-5"}, headers=staff)
    assert chosen.status_code == 200, chosen.text
    location = (await browser.get("/chat")).headers["location"]
    assert location.startswith("/language-models/") and "claude" not in location
