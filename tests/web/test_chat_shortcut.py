"""``/chat`` opens the user's last conversation or a new chat, and the chat page's
readiness warning is true: it shows exactly when no chat model is usable; an embedding
model is never the chat default nor offered in the switcher."""

from __future__ import annotations

import re

import httpx

from modelyard.conversations.service import create_conversation
from modelyard.db.engine import Database
from modelyard.providers import records
from tests.helpers import login, make_user

TEAM_KEY = "sk-shortcut-team-0123456789abcdef"
WARNING = 'id="model-key-hint"'


async def add_openai(database: Database) -> None:
    async with database.sessions() as session:
        await records.create_provider(
            session,
            actor=None,
            values={"name": "team", "kind": "openai", "api_key": TEAM_KEY, "is_default": True},
        )


def options(page: str) -> list[str]:
    select = page[page.index('id="model-select"') : page.index("</select>")]
    return re.findall(r'<option value="([^"]*)"', select)


async def test_without_a_chat_model_the_chat_page_says_so(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "embed@example.com")
    await login(client, "embed@example.com")
    chat = await client.get("/chat", follow_redirects=False)
    assert chat.status_code == 200
    assert "No chat model is ready" in chat.text and WARNING in chat.text
    # The built-in embedding model is usable, yet never offered to chat.
    assert options(chat.text) == []
    models = await client.get("/language-models")
    assert "MiniLM L6 v2" in models.text
    embedding = await client.get("/language-models/local/all-MiniLM-L6-v2")
    assert "is an embedding model: it cannot chat" in embedding.text
    assert options(embedding.text) == ["local/all-MiniLM-L6-v2"]


async def test_with_a_chat_model_there_is_no_warning_and_chat_opens_a_new_chat(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "ready@example.com")
    await login(client, "ready@example.com")
    await add_openai(database)
    chat = await client.get("/chat", follow_redirects=False)
    assert chat.status_code == 303
    target = chat.headers["location"]
    assert target.startswith("/language-models/") and "?c=" not in target
    page = await client.get(target)
    assert WARNING not in page.text
    offered = options(page.text)
    assert "gpt-4o-mini" in offered and not any(o.startswith("local/") for o in offered)


async def test_chat_opens_the_last_conversation_of_the_user_only(
    client: httpx.AsyncClient, database: Database
) -> None:
    mine = await make_user(database, "mine@example.com")
    other = await make_user(database, "other@example.com")
    await add_openai(database)
    async with database.sessions() as session:
        older = await create_conversation(session, user_id=mine.id, title="older")
        last = await create_conversation(session, user_id=mine.id, title="last")
        last.model = "gpt-4o"
        await session.commit()
        await create_conversation(session, user_id=other.id, title="someone else's")
    assert older.id < last.id
    await login(client, "mine@example.com")
    chat = await client.get("/chat", follow_redirects=False)
    assert chat.headers["location"] == f"/language-models/gpt-4o?c={last.id}"

    # Another user opens their own last conversation, never this one.
    client.cookies.clear()
    await login(client, "other@example.com")
    theirs = await client.get("/chat", follow_redirects=False)
    assert theirs.headers["location"].endswith("?c=" + str(last.id + 1))
