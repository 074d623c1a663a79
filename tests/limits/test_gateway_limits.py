"""Limits through the gateway, with the official `openai` SDK as the client: 429 with
Retry-After for requests and tokens per minute, 402 for a spent budget, token limits
independent of the user's, one limit shared by two app instances through Redis, and
concurrent requests against a budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import openai
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord, User
from modelyard.limits.enforcer import LimitEnforcer
from tests.fakes.openai_chat import ChatOpenAI
from tests.helpers import make_token
from tests.limits.conftest import Clock
from tests.limits.helpers import ASK, LONG_ASK, sdk_for, set_limits, token_record
from tests.polling import eventually

pytestmark = pytest.mark.usefixtures("openai_provider")


async def chat(client: openai.AsyncOpenAI, **extra: object) -> object:
    return await client.chat.completions.create(model="gpt-4o-mini", messages=ASK, **extra)  # type: ignore[call-overload]


async def test_fourth_request_in_a_minute_is_a_429_with_retry_after(
    app: FastAPI,
    enforcer: LimitEnforcer,
    sdk: openai.AsyncOpenAI,
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
    clock: Clock,
) -> None:
    user_id = (await token_record(database, user_token)).user_id
    await set_limits([app], "user", user_id, requests_per_minute=3)
    for _ in range(3):
        await chat(sdk)
    with pytest.raises(openai.RateLimitError) as refused:
        await chat(sdk)
    assert refused.value.response.headers["retry-after"] == "55"  # 10:20:05 → 10:21:00
    message = refused.value.message
    assert "your account's limit is 3 requests per minute" in message
    assert "3 were made this minute" in message
    assert "resets at 2025-03-12T10:21:00Z (in 55 s)" in message
    assert refused.value.code == "requests_per_minute_exceeded"
    assert len(upstream.requests) == 3  # the refused request never reached the upstream

    clock.now += 55  # the next minute: a fresh window
    await chat(sdk)
    assert len(upstream.requests) == 4


async def test_tokens_per_minute_count_real_tokens_once_settled(
    app: FastAPI,
    enforcer: LimitEnforcer,
    sdk: openai.AsyncOpenAI,
    database: Database,
    user_token: str,
    clock: Clock,
) -> None:
    user_id = (await token_record(database, user_token)).user_id
    await set_limits([app], "user", user_id, tokens_per_minute=50)
    # Each reserves its prompt plus max_tokens (well over 30) but really uses 3 tokens
    # ("hello" → "Echo: hello"), so the second fits once the first is settled.
    await chat(sdk, max_tokens=30)
    await chat(sdk, max_tokens=30)
    with pytest.raises(openai.RateLimitError) as refused:
        await chat(sdk, max_tokens=45)
    message = refused.value.message
    assert "your account's limit is 50 tokens per minute; 6 were used this minute" in message
    assert refused.value.response.headers["retry-after"] == "55"

    clock.now += 60
    with pytest.raises(openai.RateLimitError) as too_large:
        await chat(sdk, max_tokens=100)
    assert "This request alone is larger than the limit" in too_large.value.message


async def test_spent_budget_is_a_402_saying_when_it_resets(
    app: FastAPI,
    enforcer: LimitEnforcer,
    sdk: openai.AsyncOpenAI,
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
) -> None:
    user_id = (await token_record(database, user_token)).user_id
    await set_limits([app], "user", user_id, budget_usd=Decimal("0.000001"))
    await chat(sdk)  # costs $0.00000135: (1 * 0.15 + 2 * 0.60) / 1e6
    with pytest.raises(openai.APIStatusError) as refused:
        await chat(sdk)
    assert refused.value.status_code == 402
    message = refused.value.message
    assert "your account's budget is $0.000001 per month" in message
    assert "$0.00000135 was spent this month" in message
    assert "It resets at 2025-04-01T00:00:00Z" in message
    assert len(upstream.requests) == 1


async def test_budget_spend_starts_from_the_usage_table(
    app: FastAPI,
    enforcer: LimitEnforcer,
    sdk: openai.AsyncOpenAI,
    database: Database,
    user_token: str,
) -> None:
    user_id = (await token_record(database, user_token)).user_id
    async with database.sessions() as session:
        for when, cost in (
            (datetime(2025, 2, 28, 23, 59, tzinfo=UTC), "10"),  # last month: not counted
            (datetime(2025, 3, 1, 0, 0, tzinfo=UTC), "0.30"),
            (datetime(2025, 3, 11, 8, 0, tzinfo=UTC), "0.20"),
        ):
            session.add(
                UsageRecord(
                    created_at=when,
                    user_id=user_id,
                    endpoint="chat",
                    model="gpt-4o-mini",
                    status=200,
                    cost_usd=Decimal(cost),
                )
            )
        await session.commit()
    await set_limits([app], "user", user_id, budget_usd=Decimal("0.51"))
    await chat(sdk)  # $0.50 spent this month < $0.51
    # A changed limit reads the table again ($0.50: the request above is not recorded yet).
    await set_limits([app], "user", user_id, budget_usd=Decimal("0.50"))
    with pytest.raises(openai.APIStatusError) as refused:
        await chat(sdk)
    assert (
        refused.value.status_code == 402 and "$0.50 was spent this month" in refused.value.message
    )
    # A weekly budget counts from Monday 2025-03-10: only the $0.20.
    await set_limits([app], "user", user_id, budget_usd=Decimal("0.21"), budget_period="week")
    await chat(sdk)


async def test_token_limits_are_independent_of_the_users(
    app: FastAPI,
    enforcer: LimitEnforcer,
    database: Database,
    user_token: str,
    asgi_http: httpx.AsyncClient,
) -> None:
    record = await token_record(database, user_token)
    async with database.sessions() as session:
        owner = await session.get(User, record.user_id)
    assert owner is not None
    other = await make_token(database, owner, "second")
    await set_limits([app], "token", record.id, requests_per_minute=1)
    await set_limits([app], "user", record.user_id, requests_per_minute=3)
    limited, free = (
        openai.AsyncOpenAI(
            base_url="http://testserver/v1", api_key=key, http_client=asgi_http, max_retries=0
        )
        for key in (user_token, other)
    )
    await chat(limited)
    with pytest.raises(openai.RateLimitError) as by_token:
        await chat(limited)
    assert f"API token {record.id}'s limit is 1 requests per minute" in by_token.value.message
    await chat(free)  # the other token has no limit of its own
    await chat(free)  # the user's third request (the refused one was not counted)
    with pytest.raises(openai.RateLimitError) as by_user:
        await chat(free)
    assert "your account's limit is 3 requests per minute" in by_user.value.message


async def test_two_app_instances_enforce_one_limit_through_redis(
    redis_apps: list[FastAPI], database: Database, user_token: str
) -> None:
    user_id = (await token_record(database, user_token)).user_id
    await set_limits(redis_apps, "user", user_id, requests_per_minute=3)
    clients: list[httpx.AsyncClient] = []
    one, two = (sdk_for(app, user_token, clients) for app in redis_apps)
    try:
        await chat(one)
        await chat(two)
        await chat(one)
        # Each app alone made at most 2 requests: only a shared counter refuses this one.
        with pytest.raises(openai.RateLimitError) as refused:
            await chat(two)
        assert "3 were made this minute" in refused.value.message
    finally:
        for client in clients:
            await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def shared_apps(request: pytest.FixtureRequest) -> list[FastAPI]:
    """One app (in-memory counters) or two apps sharing Redis."""
    if request.param == "memory":
        request.getfixturevalue("enforcer")
        return [request.getfixturevalue("app")]
    apps: list[FastAPI] = request.getfixturevalue("redis_apps")
    return apps


@pytest.fixture
async def clients(
    shared_apps: list[FastAPI], user_token: str
) -> AsyncIterator[tuple[list[FastAPI], list[openai.AsyncOpenAI]]]:
    """An SDK client for each of ``shared_apps``."""
    http: list[httpx.AsyncClient] = []
    yield shared_apps, [sdk_for(app, user_token, http) for app in shared_apps]
    for client in http:
        await client.aclose()


async def test_concurrent_requests_overspend_at_most_what_is_in_flight(
    clients: tuple[list[FastAPI], list[openai.AsyncOpenAI]],
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
) -> None:
    apps, sdks = clients
    user_id = (await token_record(database, user_token)).user_id
    cost = Decimal("0.0000756")  # one LONG_ASK request
    await set_limits(apps, "user", user_id, budget_usd=Decimal("0.000265"))  # 3.5 requests
    await sdks[0].chat.completions.create(model="gpt-4o-mini", messages=LONG_ASK)

    upstream.gate.clear()  # every admitted request stays in flight until all are decided

    refusals: list[str] = []

    async def one(index: int) -> int:
        try:
            await sdks[index % len(sdks)].chat.completions.create(
                model="gpt-4o-mini", messages=LONG_ASK
            )
        except openai.APIStatusError as error:
            assert error.status_code == 402, error.message
            refusals.append(error.message)
            return 402
        return 200

    requests = asyncio.gather(*(one(i) for i in range(8)))
    for _ in range(3000):  # up to 30 s for the five refusals; then the test fails below
        if len(refusals) >= 5 or requests.done():
            break
        await asyncio.sleep(0.01)
    upstream.gate.set()
    outcomes = await requests
    # $0.0000756 spent: each request reserves that mean cost, so while 3 are in flight
    # 0.0000756 * 4 >= 0.000265 and the other 5 are refused.
    assert sorted(outcomes) == [200] * 3 + [402] * 5
    assert all(
        "$0.0000756 was spent this month and 3 requests in flight reserve $0.0002268" in message
        for message in refusals
    ), refusals
    assert len(upstream.requests) == 4

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[-1]), base_url="http://t")
    spent: list[Decimal] = []

    async def all_settled() -> bool:
        mine = await http.get(
            "/v2/users/me/limits", headers={"Authorization": f"Bearer {user_token}"}
        )
        spent.append(Decimal(mine.json()["user"]["usage"]["spent_usd"]))
        return spent[-1] >= 4 * cost

    # The other process's settlements reach Redis within its outbox's delay (50 ms).
    async with http:
        await eventually(all_settled, timeout=2)
    assert spent[-1] == 4 * cost  # overspent by less than one request: 0.0003024 < 0.000265 + cost
    with pytest.raises(openai.APIStatusError) as refused:
        await sdks[0].chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert refused.value.status_code == 402
