"""The history endpoints: list and search, detail, messages, rename, delete, export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import update

from modelyard.db.engine import Database
from modelyard.db.models import Conversation, ConversationMessage
from tests.conversations.conftest import conversation_count, message_count
from tests.helpers import bearer, login, make_token, make_user

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class Account:
    id: int
    headers: dict[str, str]


async def account(database: Database, email: str, *, staff: bool = False) -> Account:
    user = await make_user(database, email, staff=staff)
    return Account(user.id, bearer(await make_token(database, user)))


@pytest.fixture
async def alice(database: Database) -> Account:
    return await account(database, "alice@example.com")


@pytest.fixture
async def bob(database: Database) -> Account:
    return await account(database, "bob@example.com", staff=True)


async def seed(
    database: Database,
    owner: Account,
    title: str,
    *texts: str,
    minutes: int = 0,
) -> int:
    """A conversation of ``owner`` with alternating user/assistant ``texts``."""
    async with database.sessions() as session:
        conversation = Conversation(
            user_id=owner.id,
            title=title,
            model="gpt-4o-mini",
            created_at=START,
            updated_at=START + timedelta(minutes=minutes),
        )
        session.add(conversation)
        await session.flush()
        parent: int | None = None
        for index, text in enumerate(texts):
            answer = index % 2 == 1
            message = ConversationMessage(
                conversation_id=conversation.id,
                parent_id=parent,
                role="assistant" if answer else "user",
                content=text,
                model="gpt-4o-mini",
                input_tokens=0 if answer else 10,
                output_tokens=5 if answer else 0,
                cost_usd=Decimal("0.000004") if answer else Decimal(0),
                latency_ms=250 if answer else None,
                created_at=START + timedelta(seconds=index),
            )
            session.add(message)
            await session.flush()
            parent = message.id
        await session.execute(  # the shown leaf, keeping the activity date
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(current_message_id=parent, updated_at=Conversation.updated_at)
        )
        await session.commit()
        return conversation.id


async def titles(client: httpx.AsyncClient, who: Account, **params: str | int) -> list[str]:
    response = await client.get("/v2/conversations/", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


async def test_list_is_newest_first_and_paginated(
    client: httpx.AsyncClient, database: Database, alice: Account, bob: Account
) -> None:
    for minute in (3, 1, 4, 0, 2):
        await seed(database, alice, f"chat {minute}", minutes=minute)
    await seed(database, bob, "bob's", minutes=9)
    first = await client.get("/v2/conversations/?limit=2", headers=alice.headers)
    body = first.json()
    assert [i["title"] for i in body["items"]] == ["chat 4", "chat 3"]
    assert (body["total"], body["limit"], body["offset"], body["next_offset"]) == (5, 2, 0, 2)
    assert await titles(client, alice, limit=2, offset=2) == ["chat 2", "chat 1"]
    last = (await client.get("/v2/conversations/?limit=2&offset=4", headers=alice.headers)).json()
    assert [i["title"] for i in last["items"]] == ["chat 0"] and last["next_offset"] is None
    assert len(await titles(client, alice)) == 5  # default limit 20
    for bad in ("limit=0", "limit=101", "offset=-1", "limit=abc"):
        response = await client.get(f"/v2/conversations/?{bad}", headers=alice.headers)
        assert response.status_code == 422, bad
    assert (await client.get("/v2/conversations/")).status_code == 401


async def test_search_titles_and_messages(
    client: httpx.AsyncClient, database: Database, alice: Account, bob: Account
) -> None:
    await seed(database, alice, "Trip to Lisbon", "where to eat?", "Try the pastéis", minutes=1)
    await seed(database, alice, "Taxes", "What is 100% deductible?", "Nothing.", minutes=2)
    await seed(database, alice, "snake_case names", "why snake_case", minutes=3)
    await seed(database, alice, "Quotes", 'it\'s "quoted" here', minutes=4)
    await seed(database, alice, "Other", "plain words", "LISBON again in the answer", minutes=5)
    await seed(database, bob, "Lisbon for bob", minutes=6)
    assert await titles(client, alice, q="lisbon") == ["Other", "Trip to Lisbon"]
    assert await titles(client, alice, q="pastéis") == ["Trip to Lisbon"]
    # LIKE wildcards are taken literally.
    assert await titles(client, alice, q="100%") == ["Taxes"]
    assert await titles(client, alice, q="%") == ["Taxes"]
    assert await titles(client, alice, q="e_c") == ["snake_case names"]
    assert await titles(client, alice, q="_") == ["snake_case names"]
    assert await titles(client, alice, q="\\") == []
    # Quotes and SQL are plain text.
    assert await titles(client, alice, q='it\'s "quoted"') == ["Quotes"]
    assert await titles(client, alice, q="' OR 1=1 --") == []
    assert await titles(client, alice, q="'; DROP TABLE conversations; --") == []
    assert await conversation_count(database) == 6
    response = await client.get("/v2/conversations/?q=lisbon&limit=1", headers=alice.headers)
    assert response.json()["total"] == 2 and response.json()["next_offset"] == 1
    assert await titles(client, alice, q="") == [
        "Other",
        "Quotes",
        "snake_case names",
        "Taxes",
        "Trip to Lisbon",
    ]


async def test_detail_and_messages(
    client: httpx.AsyncClient, database: Database, alice: Account
) -> None:
    conversation_id = await seed(database, alice, "Two turns", "q1", "a1", "q2", "a2")
    detail = (
        await client.get(f"/v2/conversations/{conversation_id}", headers=alice.headers)
    ).json()
    assert detail["title"] == "Two turns" and detail["model"] == "gpt-4o-mini"
    assert detail["message_count"] == 4
    assert (detail["input_tokens"], detail["output_tokens"], detail["total_tokens"]) == (20, 10, 30)
    assert detail["cost_usd"] == pytest.approx(0.000008)
    page = (
        await client.get(f"/v2/conversations/{conversation_id}/messages", headers=alice.headers)
    ).json()
    assert [(m["role"], m["content"]) for m in page["items"]] == [
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
        ("assistant", "a2"),
    ]
    assert page["items"][1]["latency_ms"] == 250 and page["items"][1]["cost_usd"] == 0.000004
    second = (
        await client.get(
            f"/v2/conversations/{conversation_id}/messages?limit=3&offset=3", headers=alice.headers
        )
    ).json()
    assert [m["content"] for m in second["items"]] == ["a2"] and second["next_offset"] is None
    empty = await seed(database, alice, "Empty")
    detail = (await client.get(f"/v2/conversations/{empty}", headers=alice.headers)).json()
    assert (detail["message_count"], detail["total_tokens"], detail["cost_usd"]) == (0, 0, 0)


async def test_history_is_private_even_for_staff(
    client: httpx.AsyncClient, database: Database, alice: Account, bob: Account
) -> None:
    theirs = await seed(database, alice, "Alice's secret", "diary")
    assert bob.id != alice.id
    requests = [
        ("GET", f"/v2/conversations/{theirs}", None),
        ("GET", f"/v2/conversations/{theirs}/messages", None),
        ("GET", f"/v2/conversations/{theirs}/export?format=markdown", None),
        ("PATCH", f"/v2/conversations/{theirs}", {"title": "mine now"}),
        ("DELETE", f"/v2/conversations/{theirs}", None),
    ]
    for method, url, body in requests:
        response = await client.request(method, url, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, url)
        assert "diary" not in response.text and "secret" not in response.text
        unknown = await client.request(
            method, url.replace(str(theirs), "999999"), json=body, headers=alice.headers
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"].replace("999999", "X") == response.json()[
            "error"
        ]["message"].replace(str(theirs), "X")
    assert await titles(client, bob) == []
    assert await titles(client, alice) == ["Alice's secret"]
    assert await message_count(database) == 1


async def test_rename(client: httpx.AsyncClient, database: Database, alice: Account) -> None:
    older = await seed(database, alice, "Old name", "hi", minutes=1)
    await seed(database, alice, "Newer", minutes=2)
    url = f"/v2/conversations/{older}"
    renamed = await client.patch(url, json={"title": "  Better name  "}, headers=alice.headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "Better name" and renamed.json()["message_count"] == 1
    # A rename is no activity: the list order stays.
    assert await titles(client, alice) == ["Newer", "Better name"]
    assert (await client.patch(url, json={"title": "x" * 200}, headers=alice.headers)).is_success
    for bad in (
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {},
        {"title": None},
        {"title": "ok", "model": "x"},
    ):
        response = await client.patch(url, json=bad, headers=alice.headers)
        assert response.status_code == 422, bad
    assert (await client.get(url, headers=alice.headers)).json()["title"] == "x" * 200


async def test_rename_with_the_web_session_needs_csrf(
    client: httpx.AsyncClient, database: Database, alice: Account
) -> None:
    conversation_id = await seed(database, alice, "Cookie chat")
    csrf = await login(client, "alice@example.com")
    url = f"/v2/conversations/{conversation_id}"
    assert (await client.patch(url, json={"title": "No token"})).status_code == 403
    response = await client.patch(url, json={"title": "With token"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200 and response.json()["title"] == "With token"


async def test_delete(client: httpx.AsyncClient, database: Database, alice: Account) -> None:
    gone = await seed(database, alice, "Delete me", "q", "a")
    kept = await seed(database, alice, "Keep me", "q", "a")
    response = await client.delete(f"/v2/conversations/{gone}", headers=alice.headers)
    assert response.status_code == 204
    assert (await client.get(f"/v2/conversations/{gone}", headers=alice.headers)).status_code == 404
    assert (
        await client.delete(f"/v2/conversations/{gone}", headers=alice.headers)
    ).status_code == 404
    assert await titles(client, alice) == ["Keep me"]
    assert await message_count(database) == 2
    assert (await client.get(f"/v2/conversations/{kept}", headers=alice.headers)).is_success


async def test_export_json(client: httpx.AsyncClient, database: Database, alice: Account) -> None:
    conversation_id = await seed(database, alice, "Café: plans / ideas!", "q1", "a1")
    response = await client.get(
        f"/v2/conversations/{conversation_id}/export?format=json", headers=alice.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="conversation-{conversation_id}-cafe-plans-ideas.json"'
    )
    document = response.json()
    assert document["conversation"]["title"] == "Café: plans / ideas!"
    assert document["conversation"]["total_tokens"] == 15
    assert [(m["role"], m["content"], m["model"]) for m in document["messages"]] == [
        ("user", "q1", "gpt-4o-mini"),
        ("assistant", "a1", "gpt-4o-mini"),
    ]
    assert document["messages"][1]["output_tokens"] == 5
    default = await client.get(f"/v2/conversations/{conversation_id}/export", headers=alice.headers)
    assert default.json()["messages"] == document["messages"]
    bad = await client.get(
        f"/v2/conversations/{conversation_id}/export?format=pdf", headers=alice.headers
    )
    assert bad.status_code == 422


async def test_export_markdown(
    client: httpx.AsyncClient, database: Database, alice: Account
) -> None:
    conversation_id = await seed(
        database, alice, "Ünïcode only ☃", "Hello **there**", "General Kenobi"
    )
    response = await client.get(
        f"/v2/conversations/{conversation_id}/export?format=markdown", headers=alice.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="conversation-{conversation_id}-unicode-only.md"'
    )
    text = response.text
    assert text.startswith("# Ünïcode only ☃\n")
    assert "- Messages: 2" in text and "- Tokens: 15 (10 in, 5 out)" in text
    assert "- Cost: $0.000004" in text
    user_at = text.index("## User (2025-01-01 12:00:00 UTC)")
    answer_at = text.index("## Assistant (2025-01-01 12:00:01 UTC)")
    assert user_at < text.index("Hello **there**") < answer_at < text.index("General Kenobi")
    assert "*gpt-4o-mini · 10 tokens in · $0*" in text
    assert "*gpt-4o-mini · 5 tokens out · $0.000004 · 250 ms*" in text
