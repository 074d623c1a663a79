"""The staff API for limits, the user's own limits, and the admin view of the rows."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import AuditLogEntry, UsageLimit, User
from modelyard.limits.enforcer import LimitEnforcer
from tests.helpers import bearer, login, make_token, make_user
from tests.limits.helpers import ASK, token_record

SAME_SITE = {"Origin": "http://testserver"}


@pytest.fixture
async def staff_token(database: Database) -> str:
    return await make_token(database, await make_user(database, "boss@example.com", staff=True))


async def audit(database: Database) -> list[tuple[str, str | None, list[str]]]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(AuditLogEntry)
            .where(AuditLogEntry.entity_type == "usage_limit")
            .order_by(AuditLogEntry.id)
        )
        return [(row.action, row.entity_name, list(row.changed_fields)) for row in rows]


async def test_staff_set_replace_read_and_delete_limits(
    client: httpx.AsyncClient,
    enforcer: LimitEnforcer,
    database: Database,
    staff_token: str,
    user_token: str,
) -> None:
    staff = bearer(staff_token)
    record = await token_record(database, user_token)
    url = f"/v2/admin/limits/users/{record.user_id}"
    assert (await client.get(url, headers=staff)).status_code == 404

    created = await client.put(
        url, json={"budget_usd": "5", "requests_per_minute": 60}, headers=staff
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["subject"] == "user" and body["user_id"] == record.user_id
    assert Decimal(body["budget_usd"]) == 5 and body["budget_period"] == "month"
    assert body["requests_per_minute"] == 60 and body["tokens_per_minute"] is None
    assert body["usage"]["period_started_at"].startswith("2025-03-01T00:00:00")
    assert body["usage"]["period_resets_at"].startswith("2025-04-01T00:00:00")
    assert body["usage"]["minute_resets_at"].startswith("2025-03-12T10:21:00")

    replaced = await client.put(
        url, json={"tokens_per_minute": 1000, "budget_period": "day"}, headers=staff
    )
    assert replaced.status_code == 200
    assert replaced.json()["requests_per_minute"] is None  # PUT replaces the whole row
    read = (await client.get(url, headers=staff)).json()
    assert read["tokens_per_minute"] == 1000 and read["budget_usd"] is None

    token_url = f"/v2/admin/limits/tokens/{record.id}"
    assert (
        await client.put(token_url, json={"requests_per_minute": 5}, headers=staff)
    ).status_code == 201
    assert (await client.get(token_url, headers=staff)).json()["api_token_id"] == record.id

    assert (await client.delete(url, headers=staff)).status_code == 204
    assert (await client.delete(url, headers=staff)).status_code == 404
    assert (await client.delete(token_url, headers=staff)).status_code == 204
    assert await audit(database) == [
        (
            "create",
            f"user {record.user_id}",
            ["budget_period", "budget_usd", "requests_per_minute"],
        ),
        (
            "update",
            f"user {record.user_id}",
            ["budget_period", "budget_usd", "requests_per_minute", "tokens_per_minute"],
        ),
        ("create", f"API token {record.id}", ["budget_period", "requests_per_minute"]),
        ("delete", f"user {record.user_id}", []),
        ("delete", f"API token {record.id}", []),
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"budget_usd": "-1"}, "budget_usd"),
        ({"budget_usd": "0"}, "budget_usd"),
        ({"budget_usd": "0.0000001"}, "budget_usd"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"tokens_per_minute": -5}, "tokens_per_minute"),
        ({"requests_per_minute": 2**31}, "requests_per_minute"),
        ({"budget_usd": "1", "budget_period": "year"}, "budget_period"),
        ({}, "at least one of budget_usd"),
        ({"rpm": 3}, "rpm"),
    ],
)
async def test_invalid_limits_are_refused_clearly(
    client: httpx.AsyncClient,
    enforcer: LimitEnforcer,
    staff_token: str,
    body: dict[str, object],
    problem: str,
) -> None:
    response = await client.put("/v2/admin/limits/users/1", json=body, headers=bearer(staff_token))
    assert response.status_code == 422
    assert problem in response.json()["error"]["message"]


async def test_unknown_subjects_and_non_staff_are_refused(
    client: httpx.AsyncClient, enforcer: LimitEnforcer, staff_token: str, user_token: str
) -> None:
    rpm = {"requests_per_minute": 1}
    missing_user = await client.put(
        "/v2/admin/limits/users/999", json=rpm, headers=bearer(staff_token)
    )
    assert missing_user.status_code == 404 and "No user with id 999" in missing_user.text
    missing_token = await client.get("/v2/admin/limits/tokens/999", headers=bearer(staff_token))
    assert missing_token.status_code == 404 and "No API token with id 999" in missing_token.text
    for method in ("GET", "PUT", "DELETE"):
        denied = await client.request(
            method, "/v2/admin/limits/users/1", json=rpm, headers=bearer(user_token)
        )
        assert denied.status_code == 403, method


async def test_my_limits_show_consumption_and_resets(
    client: httpx.AsyncClient,
    enforcer: LimitEnforcer,
    sdk: openai.AsyncOpenAI,
    openai_provider: int,
    database: Database,
    staff_token: str,
    user_token: str,
) -> None:
    record = await token_record(database, user_token)
    mine = await client.get("/v2/users/me/limits", headers=bearer(user_token))
    assert mine.status_code == 200 and mine.json() == {"user": None, "tokens": []}

    staff = bearer(staff_token)
    limits = {"budget_usd": "1", "budget_period": "week", "tokens_per_minute": 500}
    await client.put(f"/v2/admin/limits/users/{record.user_id}", json=limits, headers=staff)
    await client.put(
        f"/v2/admin/limits/tokens/{record.id}", json={"requests_per_minute": 9}, headers=staff
    )
    for _ in range(2):
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    body = (await client.get("/v2/users/me/limits", headers=bearer(user_token))).json()
    user = body["user"]
    assert user["budget_period"] == "week" and user["tokens_per_minute"] == 500
    assert user["usage"]["requests_this_minute"] == 2
    assert user["usage"]["tokens_this_minute"] == 6  # 3 real tokens each
    assert Decimal(user["usage"]["spent_usd"]) == Decimal("0.0000027")
    assert user["usage"]["in_flight"] == 0
    assert user["usage"]["period_started_at"].startswith("2025-03-10T00:00:00")  # a Monday
    assert user["usage"]["period_resets_at"].startswith("2025-03-17T00:00:00")
    (token,) = body["tokens"]
    assert token["api_token_id"] == record.id and token["requests_per_minute"] == 9
    assert token["usage"]["requests_this_minute"] == 2
    # Another user's view holds none of this.
    stranger = await make_token(database, await make_user(database, "other@example.com"))
    theirs = await client.get("/v2/users/me/limits", headers=bearer(stranger))
    assert theirs.json() == {"user": None, "tokens": []}


async def test_admin_view_creates_edits_and_deletes_limits(
    client: httpx.AsyncClient, enforcer: LimitEnforcer, database: Database
) -> None:
    staff = await make_user(database, "panel@example.com", staff=True)
    await login(client, "panel@example.com")
    target = await make_user(database, "limited@example.com")
    form = {
        "user_id": str(target.id),
        "api_token_id": "",
        "budget_usd": "2.5",
        "budget_period": "day",
        "requests_per_minute": "",
        "tokens_per_minute": "",
        "save": "Save",
    }
    created = await client.post("/admin/usage-limit/create", data=form, headers=SAME_SITE)
    assert created.status_code == 302, created.text
    twice = await client.post("/admin/usage-limit/create", data=form, headers=SAME_SITE)
    assert twice.status_code == 400 and "has limits already" in twice.text
    both = await client.post(
        "/admin/usage-limit/create", data={**form, "api_token_id": "1"}, headers=SAME_SITE
    )
    assert both.status_code == 400 and "exactly one of user id and API token id" in both.text
    negative = await client.post(
        "/admin/usage-limit/create",
        data={**form, "user_id": str(staff.id), "requests_per_minute": "-3"},
        headers=SAME_SITE,
    )
    assert negative.status_code == 400 and "requests_per_minute" in negative.text
    async with database.sessions() as session:
        row = await session.scalar(select(UsageLimit).where(UsageLimit.user_id == target.id))
    assert row is not None and row.budget_usd == Decimal("2.5") and row.budget_period == "day"
    listing = await client.get("/admin/usage-limit/list")
    assert listing.status_code == 200 and "2.5" in listing.text

    edited = await client.post(
        f"/admin/usage-limit/edit/{row.id}",
        data={**form, "requests_per_minute": "30"},
        headers=SAME_SITE,
    )
    assert edited.status_code == 302, edited.text
    moved = await client.post(
        f"/admin/usage-limit/edit/{row.id}",
        data={**form, "user_id": str(staff.id)},
        headers=SAME_SITE,
    )
    assert moved.status_code == 400 and "cannot change" in moved.text
    deleted = await client.delete(f"/admin/usage-limit/delete?pks={row.id}", headers=SAME_SITE)
    assert deleted.status_code == 200
    async with database.sessions() as session:
        assert await session.scalar(select(UsageLimit)) is None
        assert await session.get(User, target.id) is not None
    assert [action for action, _name, _fields in await audit(database)] == [
        "create",
        "update",
        "delete",
    ]
