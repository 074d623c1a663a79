"""The staff-only admin panel at /admin: access, write-only secrets, search, actions, CSRF."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from modelyard.admin import mount_admin
from modelyard.admin.auth import inline_script_hashes
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import AuditLogEntry, GatewayRoute, LlmModel, Provider, User
from modelyard.providers import records
from tests.fakes import FakeOpenAI
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.fixtures import fake_openai as fake_openai
from tests.helpers import bearer, login, make_token, make_user

CANARY = "sk-canary-admin-0123456789abcdef"
WRONG_KEY = "sk-wrong-admin-key-0123456789abcdef"
SAME_SITE = {"Origin": "http://testserver"}
FROM_LIST = {"Referer": "http://testserver/admin/provider/list"}
LIST_PAGES = [
    "/admin/provider/list",
    "/admin/gateway-route/list",
    "/admin/user/list",
    "/admin/llm-model/list",
    "/admin/audit-log-entry/list",
]
INJECTIONS = ["' OR 1=1 --", "%'; DROP TABLE providers; --", '"; DELETE FROM users; --']


@pytest.fixture
async def staff(client: httpx.AsyncClient, database: Database) -> User:
    user = await make_user(database, "staff@example.com", staff=True)
    await login(client, "staff@example.com")
    return user


def provider_form(**overrides: str) -> dict[str, str]:
    form = {
        "name": "canary",
        "kind": "openai",
        "api_key": "",
        "base_url": "",
        "base_model": "gpt-4o-mini",
        "fine_tuned_model_id": "",
        "organization_id": "",
        "is_active": "y",
        "save": "Save",
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


async def add_provider(database: Database, name: str, **values: object) -> Provider:
    async with database.sessions() as session:
        return await records.create_provider(
            session,
            actor=None,
            values={"name": name, "kind": "openai", "api_key": OPENAI_KEY, **values},
        )


async def get_provider(database: Database, name: str) -> Provider:
    async with database.sessions() as session:
        provider = await session.scalar(select(Provider).where(Provider.name == name))
        assert provider is not None
        return provider


async def audit_rows(database: Database, entity_type: str) -> list[AuditLogEntry]:
    async with database.sessions() as session:
        statement = select(AuditLogEntry).where(AuditLogEntry.entity_type == entity_type)
        return list(await session.scalars(statement.order_by(AuditLogEntry.id)))


async def run_action(client: httpx.AsyncClient, name: str, *providers: Provider) -> httpx.Response:
    """Follow an action link the way the list page does, then the redirect back."""
    pks = ",".join(str(p.id) for p in providers)
    url = f"/admin/provider/action/{name}?pks={pks}"
    return await client.get(url, headers=FROM_LIST, follow_redirects=True)


# -- access ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", *LIST_PAGES])
async def test_only_staff_get_in(client: httpx.AsyncClient, database: Database, path: str) -> None:
    anonymous = await client.get(path)
    assert anonymous.status_code in (302, 303)
    assert anonymous.headers["location"].startswith("/login?next=/admin")

    await make_user(database, "user@example.com")
    await login(client, "user@example.com")
    assert (await client.get(path)).status_code == 403

    await make_user(database, "boss@example.com", staff=True)
    await login(client, "boss@example.com")
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert "modelyard admin" in response.text


async def test_admin_login_page_leads_to_the_app_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/login")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_the_app_mounts_the_admin_once(app: FastAPI) -> None:
    with pytest.raises(RuntimeError, match="already"):
        mount_admin(app, app.state.modelyard)


async def test_admin_pages_send_a_csp_their_own_assets_satisfy(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    provider = await add_provider(database, "first")
    response = await run_action(client, "deactivate", provider)  # a page with a flash toast
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert directives["script-src"].startswith("'self'")
    assert directives["style-src"] == "'self'"
    page = response.text
    inline = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert inline, "the flash toast's inline script"
    for hash_source in inline_script_hashes(f"<script>{body}</script>" for body in inline):
        assert hash_source in directives["script-src"].split()
    assert "<style" not in page and not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
    assets = re.findall(r'<script[^>]* src="([^"]+)"', page)
    assets += re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert len(assets) >= 10
    for url in assets:
        assert urlsplit(url).netloc in ("", "testserver"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        expected = "javascript" if url.endswith(".js") else "text/css"
        assert expected in asset.headers["content-type"], url
        for reference in re.findall(r"url\(['\"]?([^'\")]+)", asset.text):
            if reference.startswith("data:"):
                continue
            target = urljoin(url, reference)
            assert urlsplit(target).netloc == "testserver", (url, reference)
    statics = await client.get(next(url for url in assets if "/admin/" in url))
    assert statics.headers["x-frame-options"] == "DENY"
    assert {"/static/theme.js", "/static/admin.js", "/static/admin.css"} <= set(assets)


# -- providers: write-only secrets -------------------------------------------------------


async def test_provider_key_is_write_only(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    created = await client.post(
        "/admin/provider/create", data=provider_form(api_key=CANARY), headers=SAME_SITE
    )
    assert created.status_code == 302, created.text
    provider = await get_provider(database, "canary")
    assert provider.api_key == CANARY
    assert provider.created_by_id == staff.id

    async with database.engine.connect() as connection:
        stored = await connection.scalar(
            text("SELECT api_key FROM providers WHERE id = :id"), {"id": provider.id}
        )
    assert stored is not None and stored.startswith("gAAAA") and CANARY not in stored

    pages = [
        "/admin/provider/list",
        f"/admin/provider/details/{provider.id}",
        f"/admin/provider/edit/{provider.id}",
        "/admin/audit-log-entry/list",
    ]
    for page in pages:
        response = await client.get(page)
        assert response.status_code == 200, page
        assert CANARY not in response.text and CANARY[3:20] not in response.text, page
    listing = (await client.get("/admin/provider/list")).text
    assert "<td>set</td>" in listing and "<td>not set</td>" in listing
    assert (await client.get("/admin/provider/export/csv")).status_code == 403

    edited = await client.post(
        f"/admin/provider/edit/{provider.id}",
        data=provider_form(name="canary", base_model="gpt-4.1"),
        headers=SAME_SITE,
    )
    assert edited.status_code == 302, edited.text
    provider = await get_provider(database, "canary")
    assert provider.api_key == CANARY
    assert provider.base_model == "gpt-4.1"

    rows = await audit_rows(database, "provider")
    assert [(row.action, row.actor_id) for row in rows] == [
        ("create", staff.id),
        ("update", staff.id),
    ]
    assert "api_key" in rows[0].changed_fields
    assert rows[1].changed_fields == ["base_model"]
    assert all(CANARY not in str(row.changed_fields) + str(row.detail) for row in rows)


async def test_provider_key_can_be_replaced_and_removed(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    provider = await add_provider(database, "rotating", organization_id="org-secret-1")
    url = f"/admin/provider/edit/{provider.id}"
    replaced = await client.post(url, data=provider_form(name="rotating", api_key=CANARY))
    assert replaced.status_code == 403  # no Origin: refused before anything else
    replaced = await client.post(
        url, data=provider_form(name="rotating", api_key=CANARY), headers=SAME_SITE
    )
    assert replaced.status_code == 302
    assert (await get_provider(database, "rotating")).api_key == CANARY

    cleared = await client.post(
        url,
        data=provider_form(name="rotating", clear_api_key="y", clear_organization_id="y"),
        headers=SAME_SITE,
    )
    assert cleared.status_code == 302
    provider = await get_provider(database, "rotating")
    assert provider.api_key is None and provider.organization_id is None
    assert (await audit_rows(database, "provider"))[-1].changed_fields == [
        "api_key",
        "organization_id",
    ]


async def test_invalid_provider_input_is_shown_not_stored(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    bad_key = "not-an-openai-key-0123456789"
    response = await client.post(
        "/admin/provider/create", data=provider_form(api_key=bad_key), headers=SAME_SITE
    )
    assert response.status_code == 400
    assert 'should start with "sk-"' in unescape(response.text)
    assert bad_key not in response.text
    bad_url = await client.post(
        "/admin/provider/create",
        data=provider_form(api_key=CANARY, base_url="ftp://nowhere"),
        headers=SAME_SITE,
    )
    assert bad_url.status_code == 400 and "http:// or https://" in bad_url.text
    assert CANARY not in bad_url.text
    async with database.sessions() as session:
        assert await session.scalar(select(func.count(Provider.id))) == 0


async def test_search_is_safe_against_sql_injection(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    await add_provider(database, "findme", base_model="gpt-4o")
    found = await client.get("/admin/provider/list", params={"search": "findme"})
    assert found.status_code == 200 and "findme" in found.text
    by_model = await client.get("/admin/provider/list", params={"search": "GPT-4O"})
    assert "findme" in by_model.text
    missing = await client.get("/admin/provider/list", params={"search": "nothing-like-it"})
    assert missing.status_code == 200 and "findme" not in missing.text

    for attack in INJECTIONS:
        for page in LIST_PAGES:
            response = await client.get(page, params={"search": attack})
            assert response.status_code == 200, (page, attack)
        assert (
            "findme"
            not in (await client.get("/admin/provider/list", params={"search": attack})).text
        )
    async with database.sessions() as session:
        assert await session.scalar(select(func.count(Provider.id))) == 1
        assert await session.scalar(select(func.count(User.id))) == 1


# -- providers: bulk actions -------------------------------------------------------------


async def test_set_default_needs_exactly_one_provider(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    first = await add_provider(database, "first")
    second = await add_provider(database, "second")

    response = await run_action(client, "set-default", first, second)
    assert response.status_code == 200
    assert "Select exactly one provider" in response.text
    assert not (await get_provider(database, "first")).is_default
    assert not (await get_provider(database, "second")).is_default

    response = await run_action(client, "set-default", first)
    assert "first is now the default provider" in response.text
    response = await run_action(client, "set-default", second)
    assert response.status_code == 200
    async with database.sessions() as session:
        defaults = list(await session.scalars(select(Provider.name).where(Provider.is_default)))
    assert defaults == ["second"]
    # The flash message is shown once, then gone.
    assert "now the default" not in (await client.get("/admin/provider/list")).text


async def test_activate_and_deactivate(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    first = await add_provider(database, "first", is_default=True)
    second = await add_provider(database, "second")

    response = await run_action(client, "deactivate", first, second)
    assert "Deactivated: first, second." in response.text
    first, second = await get_provider(database, "first"), await get_provider(database, "second")
    assert not first.is_active and not second.is_active and not first.is_default

    response = await run_action(client, "activate", second)
    assert "Activated: second." in response.text
    assert (await get_provider(database, "second")).is_active
    assert not (await get_provider(database, "first")).is_active


async def test_test_connection_stores_each_result(
    client: httpx.AsyncClient,
    database: Database,
    staff: User,
    fake_openai: FakeOpenAI,
) -> None:
    good = await add_provider(database, "good", base_url=fake_openai.base_url)
    bad = await add_provider(database, "bad", base_url=fake_openai.base_url, api_key=WRONG_KEY)

    response = await run_action(client, "test-connection", good, bad)
    assert response.status_code == 200, response.text
    assert "good" in response.text and "bad" in response.text
    rows = re.findall(
        r"<td>(\w+)</td>\s*<td class=\"result\">.*?>(ok|failed)</span>", response.text, re.S
    )
    assert rows == [("good", "ok"), ("bad", "failed")]
    assert WRONG_KEY not in response.text and OPENAI_KEY not in response.text

    good, bad = await get_provider(database, "good"), await get_provider(database, "bad")
    assert good.last_test_status == "ok" and good.last_tested_at is not None
    assert good.last_test_message and good.last_test_message.startswith("Connected")
    assert bad.last_test_status == "failed" and bad.last_test_message
    assert "401" in bad.last_test_message or "rejected" in bad.last_test_message.lower()
    assert {r.header("authorization") for r in fake_openai.requests} == {
        f"Bearer {OPENAI_KEY}",
        f"Bearer {WRONG_KEY}",
    }
    listing = (await client.get("/admin/provider/list")).text
    assert "<td>ok</td>" in listing and "<td>failed</td>" in listing


async def test_action_without_selection_explains(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    response = await client.get(
        "/admin/provider/action/activate?pks=", headers=FROM_LIST, follow_redirects=True
    )
    assert "Select at least one provider" in response.text


# -- CSRF and file-managed providers -----------------------------------------------------


async def test_cross_site_requests_are_refused(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    evil = {"Origin": "http://evil.example"}
    response = await client.post(
        "/admin/provider/create", data=provider_form(api_key=CANARY), headers=evil
    )
    assert response.status_code == 403
    assert "Cross-site request refused" in response.text
    response = await client.post(
        "/admin/provider/create",
        data=provider_form(api_key=CANARY),
        headers={"Referer": "http://evil.example/page"},
    )
    assert response.status_code == 403
    async with database.sessions() as session:
        assert await session.scalar(select(func.count(Provider.id))) == 0

    provider = await add_provider(database, "target")
    forged = await client.get(
        f"/admin/provider/action/deactivate?pks={provider.id}",
        headers={"Referer": "http://evil.example/"},
    )
    assert forged.status_code == 403
    unreferred = await client.get(f"/admin/provider/action/deactivate?pks={provider.id}")
    assert unreferred.status_code == 403
    deleted = await client.delete(f"/admin/provider/delete?pks={provider.id}", headers=evil)
    assert deleted.status_code == 403
    assert (await get_provider(database, "target")).is_active

    deleted = await client.delete(f"/admin/provider/delete?pks={provider.id}", headers=SAME_SITE)
    assert deleted.status_code == 200 and "error" not in deleted.text
    async with database.sessions() as session:
        assert await session.get(Provider, provider.id) is None
    assert [row.action for row in await audit_rows(database, "provider")][-1] == "delete"


async def test_file_managed_provider_cannot_be_edited(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    async with database.sessions() as session:
        session.add(
            Provider(name="from-file", kind="openai", api_key=OPENAI_KEY, managed_by_file=True)
        )
        await session.commit()
    provider = await get_provider(database, "from-file")

    listing = await client.get("/admin/provider/list")
    assert "managed by the file" in listing.text
    assert f"/admin/provider/edit/{provider.id}" not in listing.text

    page = await client.get(f"/admin/provider/edit/{provider.id}")
    assert page.status_code == 409
    assert "managed by the file" in page.text and "MODELYARD_CONFIG" in page.text
    posted = await client.post(
        f"/admin/provider/edit/{provider.id}",
        data=provider_form(name="renamed", base_model="x"),
        headers=SAME_SITE,
    )
    assert posted.status_code == 409
    response = await run_action(client, "deactivate", provider)
    assert "managed by the MODELYARD_CONFIG file" in response.text
    deleted = await client.delete(f"/admin/provider/delete?pks={provider.id}", headers=SAME_SITE)
    assert deleted.status_code == 403
    provider = await get_provider(database, "from-file")
    assert provider.name == "from-file" and provider.is_active and provider.base_model is None


# -- users, the catalog, the audit log ---------------------------------------------------


async def test_users_are_edited_with_audit_and_without_password(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    user = await make_user(database, "member@example.com")
    for page in (f"/admin/user/details/{user.id}", f"/admin/user/edit/{user.id}"):
        response = await client.get(page)
        assert response.status_code == 200
        assert user.password_hash not in response.text and "password" not in response.text
    assert (await client.get("/admin/user/create")).status_code == 403

    response = await client.post(
        f"/admin/user/edit/{user.id}",
        data={
            "is_staff": "y",
            "is_active": "y",
            "trial_ends_at": "2030-01-02T03:04",
            "save": "Save",
        },
        headers=SAME_SITE,
    )
    assert response.status_code == 302, response.text
    async with database.sessions() as session:
        changed = await session.get(User, user.id)
        assert changed is not None and changed.is_staff and not changed.has_subscription
        assert changed.trial_ends_at is not None
        assert changed.trial_ends_at.isoformat() == "2030-01-02T03:04:00+00:00"
    (row,) = await audit_rows(database, "user")
    assert (row.action, row.entity_id, row.actor_id) == ("update", user.id, staff.id)
    assert row.changed_fields == ["is_staff", "trial_ends_at"]

    found = await client.get("/admin/user/list", params={"search": "member@"})
    assert "member@example.com" in found.text and "staff@example.com" not in found.text


async def test_staff_cannot_lock_themselves_out(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    response = await client.post(
        f"/admin/user/edit/{staff.id}",
        data={"is_active": "y", "save": "Save"},
        headers=SAME_SITE,
    )
    assert response.status_code == 400
    assert "your own staff access" in response.text
    async with database.sessions() as session:
        me = await session.get(User, staff.id)
        assert me is not None and me.is_staff


async def test_catalog_models_are_created_edited_deleted_with_audit(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    form = {
        "provider_kind": "openai",
        "model_id": "gpt-test",
        "display_name": "GPT Test",
        "task": "chat",
        "input_price_per_million": "1.25",
        "output_price_per_million": "10",
        "context_length": "128000",
        "description": "",
        "is_active": "y",
        "save": "Save",
    }
    async with database.sessions() as session:
        seeded = await session.scalar(select(func.count(LlmModel.id)))
    created = await client.post("/admin/llm-model/create", data=form, headers=SAME_SITE)
    assert created.status_code == 302, created.text
    duplicate = await client.post("/admin/llm-model/create", data=form, headers=SAME_SITE)
    assert duplicate.status_code == 400 and "in the catalog already" in duplicate.text
    async with database.sessions() as session:
        model = await session.scalar(select(LlmModel).where(LlmModel.model_id == "gpt-test"))
        assert model is not None and str(model.input_price_per_million) == "1.250000"

    edited = await client.post(
        f"/admin/llm-model/edit/{model.id}",
        data={**form, "output_price_per_million": "12.5"},
        headers=SAME_SITE,
    )
    assert edited.status_code == 302, edited.text
    deleted = await client.delete(f"/admin/llm-model/delete?pks={model.id}", headers=SAME_SITE)
    assert deleted.status_code == 200
    async with database.sessions() as session:
        assert await session.scalar(select(func.count(LlmModel.id))) == seeded

    rows = await audit_rows(database, "llm_model")
    assert [(r.action, r.entity_name, r.actor_id) for r in rows] == [
        ("create", "openai/gpt-test", staff.id),
        ("update", "openai/gpt-test", staff.id),
        ("delete", "openai/gpt-test", staff.id),
    ]
    assert rows[1].changed_fields == ["output_price_per_million"]


async def test_audit_log_is_read_only_newest_first(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    await add_provider(database, "older-entry")
    await add_provider(database, "newer-entry")
    listing = (await client.get("/admin/audit-log-entry/list")).text
    assert listing.index("newer-entry") < listing.index("older-entry")
    (row,) = [r for r in await audit_rows(database, "provider") if r.entity_name == "older-entry"]
    assert (await client.get("/admin/audit-log-entry/create")).status_code == 403
    assert (await client.get(f"/admin/audit-log-entry/edit/{row.id}")).status_code == 403
    deleted = await client.delete(f"/admin/audit-log-entry/delete?pks={row.id}", headers=SAME_SITE)
    assert deleted.status_code == 403
    assert len(await audit_rows(database, "provider")) == 2


async def test_routes_are_edited_as_lines_with_audit(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    form = {
        "name": "text-generation",
        "description": "",
        "targets": "openai gpt-3.5-turbo\nhuggingface HuggingFaceH4/zephyr-7b-beta router",
        "cache_ttl_seconds": "",
        "is_active": "y",
        "save": "Save",
    }
    created = await client.post("/admin/gateway-route/create", data=form, headers=SAME_SITE)
    assert created.status_code == 302, created.text
    bad = await client.post(
        "/admin/gateway-route/create",
        data={**form, "name": "other", "targets": "openai gpt-4o direct"},
        headers=SAME_SITE,
    )
    assert bad.status_code == 400 and "not an endpoint of openai" in bad.text
    async with database.sessions() as session:
        route = await session.scalar(select(GatewayRoute))
        assert route is not None
        assert route.targets == [
            {"provider": "openai", "model": "gpt-3.5-turbo"},
            {
                "provider": "huggingface",
                "model": "HuggingFaceH4/zephyr-7b-beta",
                "endpoint": "router",
            },
        ]
    edit_page = await client.get(f"/admin/gateway-route/edit/{route.id}")
    assert "openai gpt-3.5-turbo" in edit_page.text
    edited = await client.post(
        f"/admin/gateway-route/edit/{route.id}",
        data={**form, "cache_ttl_seconds": "60"},
        headers=SAME_SITE,
    )
    assert edited.status_code == 302, edited.text
    rows = await audit_rows(database, "route")
    assert [(r.action, r.changed_fields) for r in rows][1:] == [("update", ["cache_ttl_seconds"])]
    assert 'name="cache_shared"' in edit_page.text
    shared = await client.post(
        f"/admin/gateway-route/edit/{route.id}",
        data={**form, "cache_ttl_seconds": "60", "cache_shared": "y"},
        headers=SAME_SITE,
    )
    assert shared.status_code == 302, shared.text
    rows = await audit_rows(database, "route")
    assert rows[-1].changed_fields == ["cache_shared"]
    async with database.sessions() as session:
        assert await session.scalar(select(GatewayRoute.cache_shared)) is True


async def test_a_routes_parameter_policy_is_chosen_in_the_form(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    form = {"name": "lenient", "targets": "anthropic claude-x", "is_active": "y", "save": "Save"}
    created = await client.post("/admin/gateway-route/create", data=form, headers=SAME_SITE)
    assert created.status_code == 302, created.text
    async with database.sessions() as session:
        route = await session.scalar(select(GatewayRoute))
        assert route is not None and route.unsupported_params == "error"
    edit_page = await client.get(f"/admin/gateway-route/edit/{route.id}")
    assert 'name="unsupported_params"' in edit_page.text
    dropped = await client.post(
        f"/admin/gateway-route/edit/{route.id}",
        data={**form, "unsupported_params": "drop"},
        headers=SAME_SITE,
    )
    assert dropped.status_code == 302, dropped.text
    assert (await audit_rows(database, "route"))[-1].changed_fields == ["unsupported_params"]
    bad = await client.post(
        f"/admin/gateway-route/edit/{route.id}",
        data={**form, "unsupported_params": "sometimes"},
        headers=SAME_SITE,
    )
    assert bad.status_code == 400
    async with database.sessions() as session:
        assert await session.scalar(select(GatewayRoute.unsupported_params)) == "drop"


async def test_training_jobs_are_listed_and_cancelled_from_the_admin(
    client: httpx.AsyncClient, database: Database, staff: User, tmp_path: Path, settings: Settings
) -> None:
    from modelyard.training import jobs
    from modelyard.training.config import TrainingConfig
    from tests.training.conftest import classification_rows, write_csv

    upload = await client.post(
        "/v2/datasets",
        headers=bearer(await make_token(database, staff)),
        files={
            "file": ("d.csv", write_csv(tmp_path / "d.csv", classification_rows(20)).read_bytes())
        },
    )
    assert upload.status_code == 201, upload.text
    async with database.sessions() as session:
        dataset = await jobs.get_dataset(session, upload.json()["id"], None)
        job = await jobs.create_job(
            session,
            user=staff,
            dataset=dataset,
            config=TrainingConfig(task="classification", output_name="admin-listed"),
            settings=settings,
        )
    for page in ("/admin/training-dataset/list", "/admin/training-job/list"):
        listed = await client.get(page)
        assert listed.status_code == 200
        assert ("d.csv" if "dataset" in page else "admin-listed") in listed.text
    url = f"/admin/training-job/action/cancel?pks={job.id}"
    referer = {"Referer": "http://testserver/admin/training-job/list"}
    response = await client.get(url, headers=referer, follow_redirects=True)
    assert f"Job {job.id} cancelled." in response.text
    response = await client.get(url, headers=referer, follow_redirects=True)
    assert "has cancelled already" in response.text
    response = await client.get(
        "/admin/training-job/action/cancel?pks=", headers=referer, follow_redirects=True
    )
    assert "Select at least one job first." in response.text
