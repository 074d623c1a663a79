"""Pin and archive: pinned conversations head the list, archived ones leave it for the
Archived list; neither moves a conversation by activity; another user's is a 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from modelyard.db.engine import Database
from modelyard.db.models import Conversation
from tests.helpers import bearer, make_token, make_user

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def seed(database: Database, user_id: int, *titles: str) -> list[int]:
    """Conversations of the user, each one minute more recent than the one before."""
    async with database.sessions() as session:
        rows = [
            Conversation(
                user_id=user_id,
                title=title,
                created_at=START,
                updated_at=START + timedelta(minutes=index),
            )
            for index, title in enumerate(titles)
        ]
        session.add_all(rows)
        await session.commit()
        return [row.id for row in rows]


@pytest.fixture
async def alice(database: Database) -> tuple[int, dict[str, str]]:
    user = await make_user(database, "alice@example.com")
    return user.id, bearer(await make_token(database, user))


async def listed(client: httpx.AsyncClient, headers: dict[str, str], **params: object) -> list[str]:
    response = await client.get("/v2/conversations/", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


async def test_pinned_first_then_by_activity_and_unpinning(
    client: httpx.AsyncClient, database: Database, alice: tuple[int, dict[str, str]]
) -> None:
    user_id, headers = alice
    old, middle, _ = await seed(database, user_id, "old", "middle", "new")
    assert await listed(client, headers) == ["new", "middle", "old"]
    pinned = await client.patch(f"/v2/conversations/{old}", json={"pinned": True}, headers=headers)
    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["pinned"] is True
    assert pinned.json()["updated_at"] == (START).isoformat().replace("+00:00", "Z")
    await client.patch(f"/v2/conversations/{middle}", json={"pinned": True}, headers=headers)
    # Pinned ones first (by activity among themselves); pages follow the same order.
    assert await listed(client, headers) == ["middle", "old", "new"]
    assert await listed(client, headers, limit=1, offset=1) == ["old"]
    await client.patch(f"/v2/conversations/{middle}", json={"pinned": False}, headers=headers)
    assert await listed(client, headers) == ["old", "new", "middle"]


async def test_archive_and_unarchive(
    client: httpx.AsyncClient, database: Database, alice: tuple[int, dict[str, str]]
) -> None:
    user_id, headers = alice
    first, _second, third = await seed(database, user_id, "first", "second", "third")
    for conversation_id in (first, third):
        response = await client.patch(
            f"/v2/conversations/{conversation_id}", json={"archived": True}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["archived_at"] is not None
    assert await listed(client, headers) == ["second"]
    # The Archived list: the last archived first; a search leaves archived ones out.
    assert await listed(client, headers, archived="true") == ["third", "first"]
    assert await listed(client, headers, q="third") == []
    page = (await client.get("/v2/conversations/?archived=true", headers=headers)).json()
    assert page["total"] == 2
    # Archiving again keeps the first date; unarchiving brings it back to its place.
    before = page["items"][0]["archived_at"]
    again = await client.patch(
        f"/v2/conversations/{third}", json={"archived": True}, headers=headers
    )
    assert again.json()["archived_at"] == before
    back = await client.patch(
        f"/v2/conversations/{third}", json={"archived": False}, headers=headers
    )
    assert back.status_code == 200 and back.json()["archived_at"] is None
    assert await listed(client, headers) == ["third", "second"]
    assert await listed(client, headers, archived="true") == ["first"]
    # An archived conversation can still be read and deleted.
    read = await client.get(f"/v2/conversations/{first}", headers=headers)
    assert read.status_code == 200 and read.json()["title"] == "first"
    assert (await client.delete(f"/v2/conversations/{first}", headers=headers)).status_code == 204
    assert await listed(client, headers, archived="true") == []


async def test_one_patch_renames_pins_and_archives(
    client: httpx.AsyncClient, database: Database, alice: tuple[int, dict[str, str]]
) -> None:
    user_id, headers = alice
    [conversation_id] = await seed(database, user_id, "before")
    response = await client.patch(
        f"/v2/conversations/{conversation_id}",
        json={"title": "after", "pinned": True, "archived": True},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["title"], body["pinned"], body["archived_at"] is not None) == (
        "after",
        True,
        True,
    )


@pytest.mark.parametrize(
    "body",
    [{}, {"pinned": None}, {"pinned": "yes"}, {"archived": 3}, {"pinned": True, "colour": "red"}],
)
async def test_bad_changes_are_422_and_change_nothing(
    client: httpx.AsyncClient,
    database: Database,
    alice: tuple[int, dict[str, str]],
    body: dict[str, object],
) -> None:
    user_id, headers = alice
    [conversation_id] = await seed(database, user_id, "kept")
    response = await client.patch(
        f"/v2/conversations/{conversation_id}", json=body, headers=headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    detail = (await client.get(f"/v2/conversations/{conversation_id}", headers=headers)).json()
    assert (detail["title"], detail["pinned"], detail["archived_at"]) == ("kept", False, None)


async def test_another_users_conversation_cannot_be_pinned_or_archived(
    client: httpx.AsyncClient, database: Database, alice: tuple[int, dict[str, str]]
) -> None:
    user_id, headers = alice
    [conversation_id] = await seed(database, user_id, "alice's")
    bob = bearer(await make_token(database, await make_user(database, "bob@example.com")))
    for body in ({"pinned": True}, {"archived": True}):
        response = await client.patch(
            f"/v2/conversations/{conversation_id}", json=body, headers=bob
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "conversation_not_found"
    assert await listed(client, bob, archived="true") == []
    detail = (await client.get(f"/v2/conversations/{conversation_id}", headers=headers)).json()
    assert (detail["pinned"], detail["archived_at"]) == (False, None)
