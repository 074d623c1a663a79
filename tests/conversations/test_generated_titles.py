"""Titles written by the title model after a conversation's first answer: asked through the
gateway as the user (a real fake OpenAI on 127.0.0.1), metered, never over a rename, and
the first words kept when there is no model or it fails."""

from __future__ import annotations

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.conversations.titles import TITLE_ENDPOINT, TITLE_MAX_TOKENS, clean_title
from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from tests.fakes.openai_chat import ChatOpenAI
from tests.helpers import bearer

TITLE_MODEL = "gpt-4.1"
QUESTION = "How do I keep sourdough starter alive while I am away for two weeks?"


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ("Sourdough starter care", "Sourdough starter care"),
        ('"Sourdough Starter Care."', "Sourdough Starter Care"),
        ("Title: **Keeping a starter alive**\n\nThis title says…", "Keeping a starter alive"),
        ("\n\n  # “Holiday starter”  \n", "Holiday starter"),
        ("title:   Pâte fermentée en vacances !", "Pâte fermentée en vacances"),
        ("x" * 80, "x" * 60 + "…"),
        ("", None),
        ('  ""  \n ** \n', None),
        ("Title:", None),
        ("Title:\nStarter care", "Starter care"),
    ],
)
def test_clean_title(answer: str, title: str | None) -> None:
    assert clean_title(answer) == title


@pytest.fixture
def title_model(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(settings, "title_model", TITLE_MODEL)
    return TITLE_MODEL


async def first_turn(sdk: openai.AsyncOpenAI) -> int:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}]
    )
    return int(raw.headers["x-modelyard-conversation-id"])


async def title_of(http: httpx.AsyncClient, token: str, conversation_id: int) -> str:
    response = await http.get(f"/v2/conversations/{conversation_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return str(response.json()["title"])


async def usage_endpoints(app: FastAPI, database: Database) -> list[tuple[str, str, int | None]]:
    await app.state.modelyard.usage.flush()
    async with database.sessions() as session:
        rows = await session.scalars(select(UsageRecord).order_by(UsageRecord.id))
        return [(r.endpoint, r.model, r.conversation_id) for r in rows]


async def test_the_title_model_titles_the_first_exchange(
    app: FastAPI,
    app_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ChatOpenAI,
    database: Database,
    title_model: str,
) -> None:
    conversation_id = await first_turn(app_sdk)
    first_words = "How do I keep sourdough starter alive while I am away for…"
    assert await title_of(asgi_http, user_token, conversation_id) == first_words
    upstream.scripted_reply = '"Title: Sourdough starter on holiday."'
    url = f"/v2/conversations/{conversation_id}/title"
    response = await asgi_http.post(url, headers=bearer(user_token))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "conversation_id": conversation_id,
        "title": "Sourdough starter on holiday",
        "generated": True,
    }
    assert await title_of(asgi_http, user_token, conversation_id) == response.json()["title"]

    # The title model got the exchange, as the user's call through the gateway.
    sent = upstream.last_request.json()
    assert sent["model"] == title_model and sent["max_tokens"] == TITLE_MAX_TOKENS
    assert sent["messages"][0]["role"] == "system"
    assert QUESTION in sent["messages"][1]["content"]
    assert f"Echo: {QUESTION}" in sent["messages"][1]["content"]
    assert await usage_endpoints(app, database) == [
        ("chat", "gpt-4o-mini", conversation_id),
        (TITLE_ENDPOINT, title_model, conversation_id),
    ]

    # Written once: asking again calls nobody and changes nothing.
    calls = len(upstream.requests)
    again = await asgi_http.post(url, headers=bearer(user_token))
    assert again.json()["generated"] is False
    assert again.json()["title"] == "Sourdough starter on holiday"
    assert len(upstream.requests) == calls


async def test_a_rename_is_never_overwritten(
    app_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ChatOpenAI,
    title_model: str,
) -> None:
    conversation_id = await first_turn(app_sdk)
    renamed = await asgi_http.patch(
        f"/v2/conversations/{conversation_id}", json={"title": "Bread"}, headers=bearer(user_token)
    )
    assert renamed.status_code == 200
    calls = len(upstream.requests)
    response = await asgi_http.post(
        f"/v2/conversations/{conversation_id}/title", headers=bearer(user_token)
    )
    assert response.json() == {
        "conversation_id": conversation_id,
        "title": "Bread",
        "generated": False,
    }
    assert len(upstream.requests) == calls


@pytest.mark.parametrize("failure", ["status", "empty", "none"])
async def test_without_a_working_title_model_the_first_words_stay(
    app: FastAPI,
    app_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ChatOpenAI,
    database: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    conversation_id = await first_turn(app_sdk)
    before = await title_of(asgi_http, user_token, conversation_id)
    if failure == "status":
        monkeypatch.setattr(settings, "title_model", TITLE_MODEL)
        upstream.status = 500
    elif failure == "empty":
        monkeypatch.setattr(settings, "title_model", TITLE_MODEL)
        upstream.scripted_reply = ' "" '
    calls = len(upstream.requests)
    response = await asgi_http.post(
        f"/v2/conversations/{conversation_id}/title", headers=bearer(user_token)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "conversation_id": conversation_id,
        "title": before,
        "generated": False,
    }
    assert await title_of(asgi_http, user_token, conversation_id) == before
    if failure == "none":
        assert len(upstream.requests) == calls
    else:
        assert len(upstream.requests) > calls
        endpoints = [endpoint for endpoint, _, _ in await usage_endpoints(app, database)]
        assert endpoints == ["chat", TITLE_ENDPOINT]


async def test_an_unanswered_or_another_users_conversation(
    app_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    other_token: str,
    upstream: ChatOpenAI,
    title_model: str,
) -> None:
    conversation_id = await first_turn(app_sdk)
    calls = len(upstream.requests)
    theirs = await asgi_http.post(
        f"/v2/conversations/{conversation_id}/title", headers=bearer(other_token)
    )
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "conversation_not_found"
    unknown = await asgi_http.post("/v2/conversations/999999/title", headers=bearer(user_token))
    assert unknown.status_code == 404
    assert len(upstream.requests) == calls
    assert "sourdough" not in theirs.text.lower()
