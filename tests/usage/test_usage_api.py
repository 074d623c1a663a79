"""GET /v2/usage and its CSV export: totals, breakdowns, periods and who sees what."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.accounts.api_tokens import create_api_token
from modelyard.db.engine import Database
from modelyard.db.models import ApiToken, User
from modelyard.usage.events import UsageEvent
from modelyard.usage.queries import CSV_COLUMNS, UsageQuery, summarize
from modelyard.usage.recorder import UsageRecorder
from tests.helpers import bearer, make_user


@dataclass
class Account:
    user: User
    tokens: list[tuple[ApiToken, str]]

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.tokens[0][1])


@dataclass
class World:
    alice: Account
    bob: Account
    staff: Account
    now: datetime


async def account(database: Database, email: str, *names: str, staff: bool = False) -> Account:
    user = await make_user(database, email, staff=staff)
    tokens = []
    for name in names:
        async with database.sessions() as session:
            tokens.append(await create_api_token(session, user=user, name=name))
    return Account(user, tokens)


def record(recorder: UsageRecorder, owner: Account, at: datetime, **values: Any) -> None:
    defaults: dict[str, Any] = {"endpoint": "chat", "model": "gpt-4o-mini", "status": 200}
    recorder.record(UsageEvent(**{**defaults, **values}, user_id=owner.user.id, created_at=at))


@pytest.fixture
async def world(database: Database, recorder: UsageRecorder) -> World:
    alice = await account(database, "alice@example.com", "laptop", "ci")
    bob = await account(database, "bob@example.com", "bob's")
    staff = await account(database, "boss@example.com", "ops", staff=True)
    now = datetime.now(UTC).replace(microsecond=0)
    (laptop, _), (ci, _) = alice.tokens
    openai = {"provider": "openai", "upstream_model": "gpt-4o-mini"}
    record(recorder, alice, now, api_token_id=laptop.id, input_tokens=100, output_tokens=50,
           cost_usd=Decimal("0.000045"), **openai)  # fmt: skip
    record(recorder, alice, now - timedelta(days=1), api_token_id=ci.id, model="claude-x",
           provider="anthropic", input_tokens=10, output_tokens=20,
           cost_usd=Decimal("0.00123456"), cache_hit=True)  # fmt: skip
    record(recorder, alice, now, status=502, error_code="upstream_server", **openai)
    record(recorder, alice, now, model="no-such-model", status=404, error_code="not_found")
    record(recorder, alice, now - timedelta(days=40), input_tokens=7, cost_usd=Decimal("1"))
    record(recorder, bob, now, api_token_id=bob.tokens[0][0].id, input_tokens=1000,
           output_tokens=1000, cost_usd=Decimal("0.00075"), **openai)  # fmt: skip
    await recorder.flush()
    return World(alice, bob, staff, now)


def keyed(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


async def test_a_user_sees_totals_and_breakdowns_of_their_own_usage(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/v2/usage", headers=world.alice.auth)
    assert response.status_code == 200, response.text
    report = response.json()
    today = world.now.date()
    assert report["user_id"] == world.alice.user.id
    assert report["end"] == today.isoformat()
    assert report["start"] == (today - timedelta(days=29)).isoformat()
    assert report["totals"] == {
        "requests": 4,
        "input_tokens": 110,
        "output_tokens": 70,
        "cost_usd": "0.00127956",
        "errors": 2,
        "cache_hits": 1,
    }
    days = {row["day"]: (row["requests"], row["cost_usd"]) for row in report["by_day"]}
    yesterday = (world.now - timedelta(days=1)).date()
    assert days == {yesterday.isoformat(): (1, "0.00123456"), today.isoformat(): (3, "0.00004500")}
    assert [row["day"] for row in report["by_day"]] == sorted(days)
    models = keyed(report["by_model"], "model")
    assert {name: row["requests"] for name, row in models.items()} == {
        "gpt-4o-mini": 2,
        "claude-x": 1,
        "no-such-model": 1,
    }
    assert models["gpt-4o-mini"]["errors"] == 1
    assert report["by_model"][0]["model"] == "claude-x"  # the most expensive first
    providers = keyed(report["by_provider"], "provider")
    assert {name: row["requests"] for name, row in providers.items()} == {
        "openai": 2,
        "anthropic": 1,
        None: 1,
    }
    (laptop, laptop_token), (ci, ci_token) = world.alice.tokens
    tokens = keyed(report["by_token"], "api_token_id")
    assert tokens[laptop.id]["name"] == "laptop"
    assert tokens[laptop.id]["display_prefix"] == laptop.display_prefix
    assert tokens[ci.id]["cost_usd"] == "0.00123456" and tokens[ci.id]["cache_hits"] == 1
    assert tokens[None]["name"] is None and tokens[None]["requests"] == 2
    assert report["by_user"] is None
    assert laptop_token not in response.text and ci_token not in response.text
    assert "bob" not in response.text


async def test_the_period_is_chosen_with_start_and_end(
    client: httpx.AsyncClient, world: World
) -> None:
    today = world.now.date()
    wide = await client.get(
        "/v2/usage",
        params={"start": (today - timedelta(days=45)).isoformat(), "end": today.isoformat()},
        headers=world.alice.auth,
    )
    assert wide.json()["totals"]["requests"] == 5
    assert wide.json()["totals"]["cost_usd"] == "1.00127956"
    only_yesterday = (world.now - timedelta(days=1)).date().isoformat()
    narrow = await client.get(
        "/v2/usage",
        params={"start": only_yesterday, "end": only_yesterday},
        headers=world.alice.auth,
    )
    assert narrow.json()["totals"]["requests"] == 1
    assert [row["model"] for row in narrow.json()["by_model"]] == ["claude-x"]
    backwards = await client.get(
        "/v2/usage",
        params={"start": today.isoformat(), "end": only_yesterday},
        headers=world.alice.auth,
    )
    assert backwards.status_code == 400 and backwards.json()["error"]["param"] == "start"
    garbage = await client.get("/v2/usage", params={"start": "soon"}, headers=world.alice.auth)
    assert garbage.status_code == 422


async def test_another_users_usage_is_never_visible(
    client: httpx.AsyncClient, world: World
) -> None:
    bob = await client.get("/v2/usage", headers=world.bob.auth)
    assert bob.json()["totals"]["requests"] == 1
    assert bob.json()["totals"]["cost_usd"] == "0.00075000"
    assert "laptop" not in bob.text and "claude-x" not in bob.text
    peeking = await client.get(
        "/v2/usage", params={"user_id": world.alice.user.id}, headers=world.bob.auth
    )
    assert peeking.status_code == 403
    csv_peek = await client.get(
        "/v2/usage/export.csv", params={"user_id": world.alice.user.id}, headers=world.bob.auth
    )
    assert csv_peek.status_code == 403
    own = await client.get(
        "/v2/usage", params={"user_id": world.bob.user.id}, headers=world.bob.auth
    )
    assert own.status_code == 200 and own.json()["totals"]["requests"] == 1
    assert (await client.get("/v2/usage")).status_code == 401
    assert (await client.get("/v2/usage/export.csv")).status_code == 401


async def test_staff_see_everyone_and_may_filter_by_user(
    client: httpx.AsyncClient, world: World
) -> None:
    everyone = (await client.get("/v2/usage", headers=world.staff.auth)).json()
    assert everyone["user_id"] is None
    assert everyone["totals"]["requests"] == 5
    assert everyone["totals"]["cost_usd"] == "0.00202956"
    users = keyed(everyone["by_user"], "user_id")
    assert users[world.alice.user.id]["email"] == "alice@example.com"
    assert users[world.alice.user.id]["requests"] == 4
    assert users[world.bob.user.id]["input_tokens"] == 1000
    assert world.staff.user.id not in users
    bob = (
        await client.get(
            "/v2/usage", params={"user_id": world.bob.user.id}, headers=world.staff.auth
        )
    ).json()
    assert bob["user_id"] == world.bob.user.id and bob["by_user"] is None
    assert bob["totals"]["requests"] == 1


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_csv_export_has_one_row_per_request(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/v2/usage/export.csv", headers=world.alice.auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    today = world.now.date()
    start = today - timedelta(days=29)
    assert (
        f'filename="modelyard-usage-{start.isoformat()}-to-{today.isoformat()}.csv"'
        in response.headers["content-disposition"]
    )
    assert response.text.splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = parse_csv(response.text)
    assert len(rows) == 4
    assert {row["user_id"] for row in rows} == {str(world.alice.user.id)}
    assert rows[0]["model"] == "claude-x"  # oldest first
    assert rows[0]["cost_usd"] == "0.00123456" and rows[0]["cache_hit"] == "true"
    assert rows[0]["api_token_name"] == "ci"
    assert datetime.fromisoformat(rows[0]["created_at"]) == world.now - timedelta(days=1)
    statuses = sorted(row["status"] for row in rows)
    assert statuses == ["200", "200", "404", "502"]
    json_total = (await client.get("/v2/usage", headers=world.alice.auth)).json()["totals"]
    assert sum(Decimal(row["cost_usd"]) for row in rows) == Decimal(json_total["cost_usd"])
    assert sum(int(row["input_tokens"]) for row in rows) == json_total["input_tokens"]
    for _record, token in world.alice.tokens:
        assert token not in response.text


async def test_staff_export_everyone_or_one_user(client: httpx.AsyncClient, world: World) -> None:
    everyone = parse_csv((await client.get("/v2/usage/export.csv", headers=world.staff.auth)).text)
    assert len(everyone) == 5
    bob = parse_csv(
        (
            await client.get(
                "/v2/usage/export.csv",
                params={"user_id": world.bob.user.id},
                headers=world.staff.auth,
            )
        ).text
    )
    assert [row["input_tokens"] for row in bob] == ["1000"]


async def test_days_are_utc_days_whatever_the_session_time_zone(
    database: Database, recorder: UsageRecorder, backend: str
) -> None:
    user = await make_user(database, "night@example.com")
    late = datetime(2024, 5, 1, 23, 30, tzinfo=UTC)
    early = datetime(2024, 5, 2, 0, 30, tzinfo=UTC)
    for at in (late, early, early):
        recorder.record(UsageEvent(endpoint="chat", model="m", status=200, user_id=user.id,
                                   created_at=at))  # fmt: skip
    await recorder.flush()
    query = UsageQuery(start=date(2024, 5, 1), end=date(2024, 5, 2), user_id=user.id)
    async with database.engine.connect() as connection:
        if backend == "postgres":
            await connection.exec_driver_sql("SET TIME ZONE 'America/New_York'")
        summary = await summarize(AsyncSession(bind=connection), query)
    assert [(g.key["day"], g.metrics.requests) for g in summary.by_day] == [
        (date(2024, 5, 1), 1),
        (date(2024, 5, 2), 2),
    ]
    only_first = UsageQuery(start=date(2024, 5, 1), end=date(2024, 5, 1), user_id=user.id)
    async with database.sessions() as session:
        assert (await summarize(session, only_first)).totals.requests == 1


async def test_csv_cells_never_start_a_formula(
    client: httpx.AsyncClient, database: Database, recorder: UsageRecorder
) -> None:
    mallory = await account(database, "mallory@example.com", "=evil")
    record(
        recorder,
        mallory,
        datetime.now(UTC),
        model='=HYPERLINK("http://x")',
        status=404,
        api_token_id=mallory.tokens[0][0].id,
    )
    await recorder.flush()
    rows = parse_csv((await client.get("/v2/usage/export.csv", headers=mallory.auth)).text)
    assert rows[0]["model"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["api_token_name"] == "'=evil"
    assert rows[0]["status"] == "404"


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ("  =1+1", "'  =1+1"),
        ('\n=HYPERLINK("http://x")', '\'\n=HYPERLINK("http://x")'),
        ("\r\n @SUM(A1)", "'\r\n @SUM(A1)"),
        ("\t-2", "'\t-2"),
        ("\u3000+cmd", "'\u3000+cmd"),
        ("\rplain", "'\rplain"),
        ("gpt-4o", "gpt-4o"),
        ("a = b", "a = b"),
    ],
)
async def test_csv_formula_guard_skips_leading_spaces_and_line_breaks(
    client: httpx.AsyncClient,
    database: Database,
    recorder: UsageRecorder,
    model: str,
    shown: str,
) -> None:
    """Spreadsheets skip leading blanks before a formula: so does the guard."""
    owner = await account(database, "sheets@example.com", "t")
    record(recorder, owner, datetime.now(UTC), model=model, status=200)
    await recorder.flush()
    rows = parse_csv((await client.get("/v2/usage/export.csv", headers=owner.auth)).text)
    assert [row["model"] for row in rows] == [shown]
