"""The web app's model lists read the same list as GET /v1/models: the models page and
the chat page's model switcher show a route (the switcher only chat models)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from tests.conftest import refuse_canaries
from tests.helpers import login, make_user
from tests.model_list.conftest import add_route

pytestmark = pytest.mark.usefixtures("openai_provider")


@pytest.fixture
async def browser(app: FastAPI, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in browser session (cookies), not following redirects."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as client:
        await make_user(database, "web@example.com")
        await login(client, "web@example.com")
        yield client


def _options(page: str) -> list[str]:
    switcher = page[page.index('<select id="model-select"') :]
    switcher = switcher[: switcher.index("</select>")]
    return re.findall(r'<option value="([^"]*)"', switcher)


async def test_the_models_page_shows_a_route(
    http: httpx.AsyncClient, staff: dict[str, str], browser: httpx.AsyncClient
) -> None:
    await add_route(http, staff, "team-chat", [{"provider": "openai", "model": "gpt-4o-mini"}])
    page = (await browser.get("/language-models")).text
    usable = page[page.index('id="usable-models"') : page.index('id="locked-title"')]
    (card,) = [card for card in usable.split("<li ") if "<code>team-chat</code>" in card]
    assert 'href="/language-models/team-chat"' in card
    assert ">Route</span>" in card and "$0.15" in card and "128K" in card
    assert "<code>local/all-MiniLM-L6-v2</code>" in usable


async def test_the_chat_switcher_offers_the_route_and_only_chat_models(
    http: httpx.AsyncClient, staff: dict[str, str], browser: httpx.AsyncClient
) -> None:
    await add_route(http, staff, "team-chat", [{"provider": "openai", "model": "gpt-4o-mini"}])
    page = (await browser.get("/language-models/team-chat")).text
    route = '<option value="team-chat" data-vision="true" selected>team-chat · Route</option>'
    assert route in page  # it takes images as its first target, gpt-4o-mini, does
    options = _options(page)
    assert options.count("team-chat") == 1 and "gpt-4o-mini" in options
    assert "local/all-MiniLM-L6-v2" not in options and "text-embedding-3-small" not in options
    # The shortcut opens the first chat model of the list: routes come first.
    shortcut = await browser.get("/chat")
    assert shortcut.headers["location"] == "/language-models/team-chat"
    # Another name of a listed model opens the chat under its listed name.
    aliased = (await browser.get("/language-models/openai/gpt-4o")).text
    assert '<option value="gpt-4o" data-vision="true" selected>' in aliased
    assert _options(aliased).count("gpt-4o") == 1
