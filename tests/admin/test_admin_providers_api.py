"""The staff API for providers: access, write-only secrets, actions, one default, audit."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from modelyard.db.engine import Database
from modelyard.db.models import AuditLogEntry, Provider
from modelyard.providers import records
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.fixtures import fake_openai as fake_openai
from tests.fakes.providers import FakeOpenAI
from tests.helpers import bearer, make_token, make_user

CANARY_KEY = "sk-admin-canary-0123456789abcdef"
CANARY_ORG = "org-canary-0123456789"


@pytest.fixture
async def staff(database: Database) -> dict[str, str]:
    return bearer(
        await make_token(database, await make_user(database, "root@example.com", staff=True))
    )


async def _create(
    client: httpx.AsyncClient, staff: dict[str, str], **values: Any
) -> dict[str, Any]:
    body = {"name": "OpenAI main", "kind": "openai", **values}
    response = await client.post("/v2/admin/providers", json=body, headers=staff)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _audit(database: Database) -> list[AuditLogEntry]:
    async with database.sessions() as session:
        return list(
            (await session.execute(select(AuditLogEntry).order_by(AuditLogEntry.id))).scalars()
        )


async def test_access_matrix(
    client: httpx.AsyncClient, database: Database, staff: dict[str, str]
) -> None:
    user = bearer(await make_token(database, await make_user(database, "u@example.com")))
    for method, path in (
        ("GET", "/v2/admin/providers"),
        ("POST", "/v2/admin/providers/actions/activate"),
        ("GET", "/v2/admin/audit-log"),
    ):
        body = {"ids": [1]} if method == "POST" else None
        assert (await client.request(method, path, json=body)).status_code == 401
        assert (await client.request(method, path, json=body, headers=user)).status_code == 403
    assert (await client.get("/v2/admin/providers", headers=staff)).status_code == 200


async def test_secrets_are_encrypted_and_write_only(
    client: httpx.AsyncClient, database: Database, staff: dict[str, str]
) -> None:
    created = await _create(client, staff, api_key=CANARY_KEY, organization_id=CANARY_ORG)
    assert created["has_api_key"] and created["has_organization_id"]
    assert "api_key" not in created and created["created_by"] == "root@example.com"
    assert created["effective_base_url"] == "https://api.openai.com/v1"
    async with database.engine.connect() as connection:
        row = (
            await connection.exec_driver_sql("SELECT api_key, organization_id FROM providers")
        ).one()
    assert CANARY_KEY not in row[0] and CANARY_ORG not in row[1]

    listed = await client.get("/v2/admin/providers", headers=staff)
    assert CANARY_ORG not in listed.text
    kept = await client.patch(
        f"/v2/admin/providers/{created['id']}", json={"base_model": "gpt-4o"}, headers=staff
    )
    assert kept.json()["has_api_key"] is True
    cleared = await client.patch(
        f"/v2/admin/providers/{created['id']}", json={"api_key": None}, headers=staff
    )
    assert cleared.json()["has_api_key"] is False

    entries = await _audit(database)
    assert [e.action for e in entries] == ["create", "update", "update"]
    assert entries[0].changed_fields == sorted(
        ["api_key", "is_active", "is_default", "kind", "name", "organization_id"]
    )
    assert entries[1].changed_fields == ["base_model"] and entries[2].changed_fields == ["api_key"]
    assert all(e.actor_email == "root@example.com" for e in entries)
    for entry in entries:
        assert CANARY_KEY not in str(entry.changed_fields) + str(entry.detail)


async def test_bad_provider_input_is_refused(
    client: httpx.AsyncClient, staff: dict[str, str]
) -> None:
    cases = [
        ({"name": "x", "kind": "nope"}, 422),
        ({"name": "x", "kind": "groq", "api_key": "sk-wrong-prefix-000"}, 400),
        ({"name": "x", "kind": "openai_compatible"}, 400),
        ({"name": "x", "kind": "openai", "base_url": "ftp://example.com"}, 422),
        ({"name": "x", "kind": "openai", "is_default": True, "is_active": False}, 400),
    ]
    for body, status in cases:
        response = await client.post("/v2/admin/providers", json=body, headers=staff)
        assert response.status_code == status, (body, response.text)
    await _create(client, staff)
    duplicate = await client.post(
        "/v2/admin/providers", json={"name": "OpenAI main", "kind": "groq"}, headers=staff
    )
    assert duplicate.status_code == 409 and duplicate.json()["error"]["param"] == "name"
    assert (await client.get("/v2/admin/providers", headers=staff)).json()[0]["kind"] == "openai"


async def test_set_default_needs_exactly_one_and_moves_the_default(
    client: httpx.AsyncClient, database: Database, staff: dict[str, str]
) -> None:
    first = await _create(client, staff, name="a", is_default=True)
    second = await _create(client, staff, name="b")
    two = await client.post(
        "/v2/admin/providers/actions/set-default",
        json={"ids": [first["id"], second["id"]]},
        headers=staff,
    )
    assert two.status_code == 400
    assert "Select exactly one provider" in two.json()["error"]["message"]
    moved = await client.post(
        "/v2/admin/providers/actions/set-default", json={"ids": [second["id"]]}, headers=staff
    )
    assert moved.status_code == 200 and moved.json()["is_default"] is True
    listed = (await client.get("/v2/admin/providers", headers=staff)).json()
    assert [(p["name"], p["is_default"]) for p in listed] == [("b", True), ("a", False)]

    deactivated = await client.post(
        "/v2/admin/providers/actions/deactivate", json={"ids": [second["id"]]}, headers=staff
    )
    assert (
        deactivated.json()[0]["is_active"] is False and deactivated.json()[0]["is_default"] is False
    )
    refused = await client.post(
        "/v2/admin/providers/actions/set-default", json={"ids": [second["id"]]}, headers=staff
    )
    assert refused.status_code == 400 and "inactive" in refused.json()["error"]["message"]
    activated = await client.post(
        "/v2/admin/providers/actions/activate", json={"ids": [second["id"]]}, headers=staff
    )
    assert activated.json()[0]["is_active"] is True
    actions = [e.action for e in await _audit(database)]
    assert actions == ["create", "create", "update", "update", "update"]
    missing = await client.post(
        "/v2/admin/providers/actions/activate", json={"ids": [999]}, headers=staff
    )
    assert missing.status_code == 404


async def test_the_database_refuses_a_second_default(database: Database) -> None:
    async with database.sessions() as session:
        await records.create_provider(
            session, actor=None, values={"name": "a", "kind": "openai", "is_default": True}
        )
    async with database.engine.connect() as connection:
        with pytest.raises(IntegrityError):
            await connection.execute(
                insert(Provider.__table__).values(
                    name="b",
                    kind="openai",
                    is_active=True,
                    is_default=True,
                    managed_by_file=False,
                    created_at=records.utcnow(),
                    updated_at=records.utcnow(),
                )
            )


async def test_single_default_under_concurrent_requests(database: Database) -> None:
    async with database.sessions() as session:
        ids = [
            (
                await records.create_provider(
                    session, actor=None, values={"name": f"p{i}", "kind": "openai"}
                )
            ).id
            for i in range(8)
        ]

    async def make_default(provider_id: int) -> None:
        async with database.sessions() as session:
            await records.set_default(session, actor=None, provider_id=provider_id)

    await asyncio.gather(*(make_default(provider_id) for provider_id in ids))
    async with database.sessions() as session:
        defaults = await session.scalar(
            select(func.count()).select_from(Provider).where(Provider.is_default.is_(True))
        )
    assert defaults == 1


async def test_search_with_sql_injection_strings_is_harmless(
    client: httpx.AsyncClient, database: Database, staff: dict[str, str]
) -> None:
    await _create(client, staff, name="alpha")
    for attack in (
        "' OR 1=1 --",
        "%'; DROP TABLE providers; --",
        '"; DELETE FROM users; --',
        "%",
        "_",
    ):
        response = await client.get("/v2/admin/providers", params={"search": attack}, headers=staff)
        assert response.status_code == 200
        if attack not in ("%", "_"):
            assert response.json() == []
    found = await client.get("/v2/admin/providers", params={"search": "ALPH"}, headers=staff)
    assert [p["name"] for p in found.json()] == ["alpha"]
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Provider)) == 1


async def test_connection_test_updates_status_for_success_401_and_timeout(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    staff: dict[str, str],
    fake_openai: FakeOpenAI,
) -> None:
    app.state.modelyard.settings.connection_test_timeout = 0.5
    good = await _create(
        client, staff, name="good", api_key=OPENAI_KEY, base_url=fake_openai.base_url
    )
    bad = await _create(
        client, staff, name="bad", api_key=CANARY_KEY, base_url=fake_openai.base_url
    )
    reports = await client.post(
        "/v2/admin/providers/actions/test", json={"ids": [good["id"], bad["id"]]}, headers=staff
    )
    assert reports.status_code == 200
    by_name = {report["name"]: report for report in reports.json()}
    assert by_name["good"]["ok"] is True and "Connected" in by_name["good"]["message"]
    assert by_name["bad"]["ok"] is False and by_name["bad"]["status_code"] == 401
    assert "Unauthorized" in by_name["bad"]["message"]

    listed = {p["name"]: p for p in (await client.get("/v2/admin/providers", headers=staff)).json()}
    assert listed["good"]["last_test_status"] == "ok" and listed["good"]["last_tested_at"]
    assert listed["bad"]["last_test_status"] == "failed"
    assert "Unauthorized" in listed["bad"]["last_test_message"]

    fake_openai.delay = 2.0
    timed_out = await client.post(
        "/v2/admin/providers/actions/test", json={"ids": [good["id"]]}, headers=staff
    )
    assert timed_out.json()[0]["ok"] is False and "Timed out" in timed_out.json()[0]["message"]
    after = (await client.get(f"/v2/admin/providers/{good['id']}", headers=staff)).json()
    assert after["last_test_status"] == "failed" and "Timed out" in after["last_test_message"]
    tests = [e for e in await _audit(database) if e.action == "test_connection"]
    assert len(tests) == 3 and all(CANARY_KEY not in (e.detail or "") for e in tests)


async def test_delete_is_audited(
    client: httpx.AsyncClient, database: Database, staff: dict[str, str]
) -> None:
    created = await _create(client, staff)
    assert (
        await client.delete(f"/v2/admin/providers/{created['id']}", headers=staff)
    ).status_code == 204
    assert (
        await client.get(f"/v2/admin/providers/{created['id']}", headers=staff)
    ).status_code == 404
    assert [e.action for e in await _audit(database)] == ["create", "delete"]
    log = (await client.get("/v2/admin/audit-log", headers=staff)).json()
    assert [entry["action"] for entry in log] == ["delete", "create"]
    assert log[0]["entity_name"] == "OpenAI main"


async def test_the_files_default_is_kept_through_the_api(
    client: httpx.AsyncClient, database: Database, staff: dict[str, str]
) -> None:
    """While the default is the file's (MODELYARD_CONFIG), the API cannot move it either:
    a 409 naming the file, and nothing changed or audited."""
    async with database.sessions() as session:
        session.add(
            Provider(
                name="from-file",
                kind="openai",
                api_key=OPENAI_KEY,
                managed_by_file=True,
                is_default=True,
            )
        )
        await session.commit()
    mine = await _create(client, staff, name="mine", api_key=OPENAI_KEY)
    before = len(await _audit(database))
    for response in (
        await client.post(
            "/v2/admin/providers/actions/set-default", json={"ids": [mine["id"]]}, headers=staff
        ),
        await client.patch(
            f"/v2/admin/providers/{mine['id']}", json={"is_default": True}, headers=staff
        ),
        await client.post(
            "/v2/admin/providers",
            json={"name": "other", "kind": "openai", "api_key": OPENAI_KEY, "is_default": True},
            headers=staff,
        ),
    ):
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "file_managed_default" and "MODELYARD_CONFIG" in error["message"]
    listed = (await client.get("/v2/admin/providers", headers=staff)).json()
    assert [(p["name"], p["is_default"]) for p in listed] == [("from-file", True), ("mine", False)]
    assert len(await _audit(database)) == before
