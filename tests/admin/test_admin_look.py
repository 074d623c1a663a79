"""The admin as part of the app: labels for people, timestamps to the minute, the app's
look and theme, the way back to the app, and the dashboard of today's traffic."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from modelyard.admin import VIEWS
from modelyard.admin.dashboard import today_figures
from modelyard.admin.display import format_timestamp, format_usd, label_for
from modelyard.db.engine import Database
from modelyard.db.models import AuditLogEntry, LlmModel, Provider, UsageRecord, User
from modelyard.providers import records
from tests.fakes.fixtures import OPENAI_KEY
from tests.helpers import login, make_user


@pytest.fixture
async def staff(client: httpx.AsyncClient, database: Database) -> User:
    user = await make_user(database, "staff@example.com", staff=True)
    await login(client, "staff@example.com")
    return user


def text_of(html: str) -> str:
    """The page's text, tags dropped and spaces folded."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


# -- labels and dates --------------------------------------------------------------------


def test_every_column_of_every_view_has_a_label_for_people() -> None:
    for view_class in VIEWS:
        view = view_class()
        shown = {*view._list_prop_names, *view._details_prop_names}
        for name in shown:
            label = view._column_labels[name]
            assert "_" not in label and label[:1].isupper(), (view_class.__name__, name, label)


def test_display_helpers() -> None:
    moment = datetime(2026, 12, 3, 9, 14, 27, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-12-03 09:14 UTC"
    assert format_timestamp(None) == ""
    assert label_for("input_price_per_million") == "Input price / 1M tokens"
    assert label_for("some_new_url") == "Some new URL"
    assert format_usd(Decimal("1234.5")) == "$1,234.50"
    assert format_usd(Decimal("0.0123")) == "$0.0123"
    assert format_usd(Decimal("0.00000420")) == "$0.0000042"
    assert format_usd(0) == "$0.00"


async def test_list_and_detail_pages_show_labels_and_minutes(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    async with database.sessions() as session:
        session.add(
            LlmModel(
                provider_kind="openai",
                model_id="label-test-model",
                display_name="Label test",
                input_price_per_million=Decimal("0.15"),
                output_price_per_million=Decimal("0.60"),
            )
        )
        record = UsageRecord(
            created_at=datetime(2026, 12, 3, 9, 14, 27, 123456, tzinfo=UTC),
            user_id=staff.id,
            endpoint="chat",
            model="gpt-4o-mini",
            input_tokens=1200,
            output_tokens=300,
            cost_usd=Decimal("0.00036"),
            status=200,
        )
        session.add(record)
        await session.commit()
        record_id = record.id

    catalog = await client.get("/admin/llm-model/list")
    assert catalog.status_code == 200
    assert "Input price / 1M tokens" in catalog.text
    assert "Output price / 1M tokens" in catalog.text
    assert "input_price_per_million" not in text_of(catalog.text)

    usage = await client.get("/admin/usage-record/list")
    assert usage.status_code == 200
    page = text_of(usage.text)
    assert "2026-12-03 09:14 UTC" in page
    assert "09:14:27" not in page and "123456" not in page
    assert "Cost (USD)" in page and "$0.00036" in page
    assert "latency_ms" not in page and "Latency (ms)" in page

    detail = await client.get(f"/admin/usage-record/details/{record_id}")
    assert detail.status_code == 200
    page = text_of(detail.text)
    assert "2026-12-03 09:14 UTC" in page and "09:14:27" not in page
    assert "Request ID" in page

    users = text_of((await client.get("/admin/user/list")).text)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", users)
    assert not re.search(r"\d\d:\d\d:\d\d", users)


# -- the file-managed default ------------------------------------------------------------

FROM_LIST = {"Referer": "http://testserver/admin/provider/list"}
SAME_SITE = {"Origin": "http://testserver"}


async def _defaults(database: Database) -> list[str]:
    async with database.sessions() as session:
        return list(await session.scalars(select(Provider.name).where(Provider.is_default)))


async def test_the_files_default_is_not_taken_over_from_the_admin(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
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
        mine = await records.create_provider(
            session, actor=None, values={"name": "mine", "kind": "openai", "api_key": OPENAI_KEY}
        )
    audited = len(await _audit_rows(database))

    response = await client.get(
        f"/admin/provider/action/set-default?pks={mine.id}",
        headers=FROM_LIST,
        follow_redirects=True,
    )
    assert response.status_code == 200
    page = text_of(response.text)
    assert "'from-file' is the default provider, set by the file (MODELYARD_CONFIG)" in page
    assert "Change is_default in that file and restart." in page
    assert "now the default" not in page
    assert await _defaults(database) == ["from-file"]

    form = {"name": "mine", "base_model": "", "base_url": "", "fine_tuned_model_id": ""}
    edited = await client.post(
        f"/admin/provider/edit/{mine.id}",
        data={**form, "is_active": "y", "is_default": "y", "save": "Save"},
        headers=SAME_SITE,
    )
    assert edited.status_code == 400
    assert "set by the file (MODELYARD_CONFIG)" in unescape(edited.text)
    created = await client.post(
        "/admin/provider/create",
        data={**form, "name": "newer", "kind": "openai", "api_key": OPENAI_KEY}
        | {"is_active": "y", "is_default": "y", "save": "Save"},
        headers=SAME_SITE,
    )
    assert created.status_code == 400
    assert "set by the file (MODELYARD_CONFIG)" in unescape(created.text)
    assert OPENAI_KEY not in created.text
    assert await _defaults(database) == ["from-file"]
    assert len(await _audit_rows(database)) == audited  # nothing changed, nothing logged

    # Other changes to the provider still work; and without a default from the file,
    # the admin picks the default as before (audited).
    renamed = await client.post(
        f"/admin/provider/edit/{mine.id}",
        data={**form, "name": "mine-2", "is_active": "y", "save": "Save"},
        headers=SAME_SITE,
    )
    assert renamed.status_code in (302, 303), renamed.text
    async with database.sessions() as session:
        file_provider = await session.scalar(select(Provider).where(Provider.name == "from-file"))
        assert file_provider is not None
        file_provider.is_default = False
        await session.commit()
    response = await client.get(
        f"/admin/provider/action/set-default?pks={mine.id}",
        headers=FROM_LIST,
        follow_redirects=True,
    )
    assert "mine-2 is now the default provider" in response.text
    assert await _defaults(database) == ["mine-2"]
    rows = await _audit_rows(database)
    assert rows[-1].entity_name == "mine-2" and "is_default" in rows[-1].changed_fields
    assert rows[-1].actor_email == staff.email


async def _audit_rows(database: Database) -> list[AuditLogEntry]:
    async with database.sessions() as session:
        statement = select(AuditLogEntry).where(AuditLogEntry.entity_type == "provider")
        return list(await session.scalars(statement.order_by(AuditLogEntry.id)))


# -- the app's look and the dashboard ----------------------------------------------------


def usage(
    user_id: int | None, model: str, cost: str, status: int = 200, **values: object
) -> UsageRecord:
    return UsageRecord(
        user_id=user_id,
        endpoint="chat",
        model=model,
        input_tokens=100,
        output_tokens=50,
        cost_usd=Decimal(cost),
        status=status,
        **values,
    )


async def test_the_dashboard_shows_todays_figures(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    other = await make_user(database, "other@example.com")
    yesterday = datetime.now(UTC) - timedelta(days=1, hours=1)
    async with database.sessions() as session:
        session.add_all(
            [
                *[usage(staff.id, "gpt-4o-mini", "0.25") for _ in range(1200)],
                usage(other.id, "gpt-4o-mini", "0.25"),
                usage(other.id, "claude-3-5-haiku", "1.50"),
                usage(other.id, "claude-3-5-haiku", "0", status=502, error_code="upstream"),
                usage(staff.id, "text-embedding-3-small", "0.00002"),
                # Yesterday's request counts in none of today's figures.
                usage(other.id, "old-model", "99", created_at=yesterday),
            ]
        )
        session.add(Provider(name="on", kind="openai", api_key=OPENAI_KEY, is_active=True))
        session.add(Provider(name="off", kind="openai", api_key=OPENAI_KEY, is_active=False))
        await session.commit()

    response = await client.get("/admin/")
    assert response.status_code == 200, response.text
    page = text_of(response.text)
    figures = {
        name: text_of(re.search(rf'id="figure-{name}">(.*?)</div>', response.text, re.S)[1])
        for name in ("requests", "cost", "errors", "providers", "users")
    }
    # 1,204 requests by 2 users; 1,201 x $0.25 + $1.50 + $0.00002 = $301.75002 -> $301.75
    assert figures["requests"] == " Requests 1,204 by 2 users "
    assert figures["cost"] == " Cost $301.75 all providers "
    assert "Errors 1 " in figures["errors"] and "0.1% of requests" in figures["errors"]
    assert "Active providers 1 of 2" in figures["providers"]
    assert "Active users 2 of 2 accounts" in figures["users"]
    table = re.search(r'<table[^>]*id="top-models".*?</table>', response.text, re.S)
    assert table is not None
    rows = [
        text_of(row).split()
        for row in re.findall(r"<tr>(.*?)</tr>", table[0], re.S)
        if "<td" in row
    ]
    assert rows == [
        ["gpt-4o-mini", "1,201", "0", "$300.25"],
        ["claude-3-5-haiku", "2", "1", "$1.50"],
        ["text-embedding-3-small", "1", "0", "$0.00002"],
    ]
    assert "old-model" not in page and "$99" not in page

    # Someone signed in without staff gets no admin, dashboard included.
    await login(client, "other@example.com")
    refused = await client.get("/admin/")
    assert refused.status_code == 403
    assert "1,204" not in refused.text


async def test_an_empty_day_and_the_dashboard_figures(database: Database) -> None:
    async with database.sessions() as session:
        figures = await today_figures(session)
    assert (figures.requests, figures.errors, figures.cost_usd) == (0, 0, Decimal(0))
    assert figures.top_models == [] and figures.error_share == 0.0


@pytest.mark.parametrize("path", ["/admin/", "/admin/provider/list", "/admin/usage-record/list"])
async def test_admin_pages_lead_back_to_the_app_in_its_theme(
    client: httpx.AsyncClient, staff: User, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    back = re.search(r'<a class="ma-back" href="([^"]+)"[^>]*>(.*?)</a>', response.text, re.S)
    assert back is not None and back[1] == "/" and "Back to modelyard" in text_of(back[2])
    # The app's theme: its stored choice first (theme.js), Tabler's dark mode following it
    # (admin.js), the app's colours (admin.css), and the app's toggle (common.js).
    page = response.text
    head = page.split("</head>")[0]
    assert head.index("/static/theme.js") < head.index("/static/admin.js")
    assert '<meta name="color-scheme" content="light dark">' in head
    assert head.index('href="/static/theme.css"') < head.index('href="/static/admin.css"')
    assert "data-theme-toggle" in page and 'src="/static/common.js"' in page

    script = (await client.get("/static/admin.js")).text
    assert "data-bs-theme" in script and "prefers-color-scheme: dark" in script
    assert 'attributeFilter: ["data-theme"]' in script
    theme = (await client.get("/static/theme.css")).text
    assert ':root[data-theme="dark"]' in theme and "prefers-color-scheme: dark" in theme
    css = (await client.get("/static/admin.css")).text
    assert "--tblr-body-bg: var(--bg)" in css and "--tblr-primary: var(--accent)" in css
    assert "http://" not in css + theme and "https://" not in css + theme  # no CDN


async def test_the_app_and_the_admin_share_one_home_for_the_colours(
    client: httpx.AsyncClient, staff: User
) -> None:
    """theme.css defines the colours (light, dark by the system, dark by the toggle);
    app.css and admin.css only use them, and both kinds of page load it first."""
    theme = (await client.get("/static/theme.css")).text
    defined = set(re.findall(r"(--[a-z0-9-]+):\s*#", theme))
    assert {"--bg", "--fg", "--accent", "--danger", "--ok"} <= defined
    assert theme.count("--bg:") == 3  # light, the system's dark, the toggle's dark
    for sheet in ("app.css", "admin.css"):
        css = (await client.get(f"/static/{sheet}")).text
        assert not re.findall(r"(?m)^\s*--(?!tblr-)[a-z0-9-]+:", css), sheet
        assert "--bg:" not in css and "#4f46e5" not in css and "#8b8cf8" not in css, sheet
    for path in ("/admin/", "/profile"):
        head = (await client.get(path)).text.split("</head>")[0]
        sheets = re.findall(r'<link rel="stylesheet" href="/static/([^"]+)"', head)
        assert sheets[0] == "theme.css" and sheets[1] in {"app.css", "admin.css"}, sheets


async def test_the_dashboard_sets_the_default_chat_model(
    client: httpx.AsyncClient, database: Database, staff: User
) -> None:
    async with database.sessions() as session:
        await records.create_provider(
            session, actor=None, values={"name": "team", "kind": "openai", "api_key": OPENAI_KEY}
        )
    page = (await client.get("/admin/")).text
    form = page[page.index('id="default-chat-model"') :]
    form = form[: form.index("</select>")]
    assert 'value="gpt-4o-mini"' in form and "all-MiniLM" not in form  # chat models only
    origin = {"Origin": "http://testserver"}
    saved = await client.post(
        "/admin/settings/default-chat-model", data={"model": "gpt-4o-mini"}, headers=origin
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("/admin/")
    page = (await client.get("/admin/")).text
    assert "New chats open with gpt-4o-mini." in unescape(page)
    assert re.search(r'<option value="gpt-4o-mini" selected>', page)
    refused = await client.post(
        "/admin/settings/default-chat-model",
        data={"model": "local/all-MiniLM-L6-v2"},
        headers=origin,
    )
    assert refused.status_code == 303
    assert "is no chat model (its kind: embedding)" in unescape((await client.get("/admin/")).text)
    cleared = await client.post(
        "/admin/settings/default-chat-model", data={"model": ""}, headers=origin
    )
    assert cleared.status_code == 303
    async with database.sessions() as session:
        rows = list(
            await session.scalars(
                select(AuditLogEntry).where(AuditLogEntry.entity_type == "app_setting")
            )
        )
    assert [(row.action, row.actor_email) for row in rows] == [
        ("update", staff.email),
        ("clear", staff.email),
    ]
