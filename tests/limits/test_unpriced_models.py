"""A budget cannot be escaped through a model without a price: a caller with a USD budget
is refused it (402, naming the model) before any upstream call, unless an admin priced it
in the catalog or set a default price for its kind; dated snapshots cost what their family
costs. Callers without a budget keep using such models (recorded at cost 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import openai
import pytest
from fastapi import FastAPI

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import LlmModel, UsageRecord
from modelyard.usage.pricing import Pricing, family_of
from modelyard.usage.recorder import UsageRecorder
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.fakes.providers import FakeOpenAI
from tests.helpers import bearer
from tests.limits.helpers import ASK, sdk_for, set_limits, token_record
from tests.usage.conftest import usage_rows

pytestmark = pytest.mark.usefixtures("openai_provider")

SNAPSHOTS = ("gpt-4o-2024-08-06", "gpt-4o-2024-05-13")
#: gpt-4o in the catalog: USD per million input / output tokens.
GPT_4O = (Decimal("2.50"), Decimal("10.00"))


@pytest.fixture
def upstream() -> Iterator[ChatOpenAI]:
    """The fake OpenAI, also serving o3-mini (not in the catalog) and two gpt-4o snapshots."""
    with ChatOpenAI(keys={OPENAI_KEY}, models=[*FakeOpenAI.default_models, *SNAPSHOTS]) as fake:
        yield fake


@pytest.fixture
def recorder(app: FastAPI) -> UsageRecorder:
    usage: UsageRecorder = app.state.modelyard.usage
    return usage


async def with_budget(app: FastAPI, database: Database, token: str) -> int:
    user_id = (await token_record(database, token)).user_id
    await set_limits([app], "user", user_id, budget_usd=Decimal("5"))
    return user_id


async def records(recorder: UsageRecorder) -> list[UsageRecord]:
    await recorder.flush()
    return await usage_rows(recorder.database)


def charged(record: UsageRecord, price: tuple[Decimal, Decimal]) -> Decimal:
    return (record.input_tokens * price[0] + record.output_tokens * price[1]) / Decimal(10**6)


async def spent(http: httpx.AsyncClient, token: str) -> Decimal:
    response = await http.get("/v2/users/me/limits", headers=bearer(token))
    assert response.status_code == 200, response.text
    return Decimal(response.json()["user"]["usage"]["spent_usd"])


@pytest.mark.parametrize("stream", [False, True])
async def test_a_caller_with_a_budget_is_refused_an_unpriced_model(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
    recorder: UsageRecorder,
    stream: bool,
) -> None:
    await with_budget(app, database, user_token)
    with pytest.raises(openai.APIStatusError) as refused:
        await sdk.chat.completions.create(model="openai/o3-mini", messages=ASK, stream=stream)
    assert refused.value.status_code == 402
    assert refused.value.code == "model_not_priced"
    message = refused.value.message
    assert "402 - The model `openai/o3-mini` has no price, so what it costs cannot" in message
    assert "Ask an admin to set a price for `openai/o3-mini` in the model catalog" in message
    assert upstream.requests == []  # refused before any upstream call
    [record] = await records(recorder)
    assert (record.status, record.error_code) == (402, "model_not_priced")
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (0, 0, Decimal(0))
    assert await spent(asgi_http, user_token) == 0


async def test_a_token_budget_refuses_it_too(
    app: FastAPI, sdk: openai.AsyncOpenAI, database: Database, user_token: str, upstream: ChatOpenAI
) -> None:
    record = await token_record(database, user_token)
    await set_limits([app], "token", record.id, budget_usd=Decimal("1"))
    with pytest.raises(openai.APIStatusError) as refused:
        await sdk.chat.completions.create(model="openai/o3-mini", messages=ASK)
    assert refused.value.status_code == 402 and "`openai/o3-mini`" in refused.value.message
    assert upstream.requests == []


async def test_without_a_budget_an_unpriced_model_is_served_at_no_cost(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
    recorder: UsageRecorder,
) -> None:
    user_id = (await token_record(database, user_token)).user_id
    await set_limits([app], "user", user_id, requests_per_minute=100)  # limits, no budget
    answer = await sdk.chat.completions.create(model="openai/o3-mini", messages=ASK)
    assert answer.choices[0].message.content == "Echo: hello"
    [record] = await records(recorder)
    assert record.status == 200 and record.cost_usd == 0 and record.output_tokens > 0


async def test_an_admin_price_lets_the_budget_caller_through_at_that_price(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
    recorder: UsageRecorder,
) -> None:
    await with_budget(app, database, user_token)
    with pytest.raises(openai.APIStatusError):
        await sdk.chat.completions.create(model="openai/o3-mini", messages=ASK)
    price = (Decimal("1.10"), Decimal("4.40"))
    async with database.sessions() as session:
        session.add(
            LlmModel(
                provider_kind="openai",
                model_id="o3-mini",
                display_name="o3-mini",
                input_price_per_million=price[0],
                output_price_per_million=price[1],
            )
        )
        await session.commit()
    app.state.modelyard.gateway.invalidate()  # what saving in the admin panel does
    answer = await sdk.chat.completions.create(model="openai/o3-mini", messages=ASK)
    assert answer.choices[0].message.content == "Echo: hello"
    assert len(upstream.requests) == 1
    refusal, served = await records(recorder)
    assert refusal.status == 402 and served.status == 200
    assert served.cost_usd == charged(served, price) > 0
    assert await spent(asgi_http, user_token) == served.cost_usd


@pytest.fixture
async def priced_by_default(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app whose settings price every OpenAI model the catalog lacks."""
    app = create_app(
        settings.model_copy(update={"default_prices": {"openai": (Decimal(3), Decimal(12))}}),
        system_keys={},
    )
    yield app
    await app.state.modelyard.aclose()


async def test_a_default_price_for_the_kind_lets_the_budget_caller_through(
    priced_by_default: FastAPI, database: Database, user_token: str, upstream: ChatOpenAI
) -> None:
    await with_budget(priced_by_default, database, user_token)
    clients: list[httpx.AsyncClient] = []
    try:
        client = sdk_for(priced_by_default, user_token, clients)
        await client.chat.completions.create(model="openai/o3-mini", messages=ASK)
        # The catalog's own price still wins over the default.
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    finally:
        for http in clients:
            await http.aclose()
    default, catalog = await records(priced_by_default.state.modelyard.usage)
    assert default.cost_usd == charged(default, (Decimal(3), Decimal(12))) > 0
    assert catalog.cost_usd == charged(catalog, (Decimal("0.15"), Decimal("0.60"))) > 0


async def test_a_dated_snapshot_is_charged_at_its_familys_price(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
    recorder: UsageRecorder,
) -> None:
    await with_budget(app, database, user_token)
    answer = await sdk.chat.completions.create(model="openai/gpt-4o-2024-08-06", messages=ASK)
    assert answer.choices[0].message.content == "Echo: hello"
    [record] = await records(recorder)
    assert record.upstream_model == "gpt-4o-2024-08-06"
    assert record.cost_usd == charged(record, GPT_4O) > 0


async def test_a_snapshot_its_provider_prices_apart_is_not_given_the_family_price(
    app: FastAPI, sdk: openai.AsyncOpenAI, database: Database, user_token: str, upstream: ChatOpenAI
) -> None:
    await with_budget(app, database, user_token)
    with pytest.raises(openai.APIStatusError) as refused:
        await sdk.chat.completions.create(model="openai/gpt-4o-2024-05-13", messages=ASK)
    assert refused.value.status_code == 402
    assert "`openai/gpt-4o-2024-05-13`" in refused.value.message
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("gpt-4o", None),
        ("gpt-3.5-turbo-0125", None),  # not a date: OpenAI prices these apart
        ("2024-08-06", None),
    ],
)
def test_the_family_of_a_dated_snapshot(model: str, family: str | None) -> None:
    assert family_of(model) == family


def test_prices_come_from_the_catalog_the_family_the_default_or_nowhere() -> None:
    catalog = {
        ("anthropic", "claude-sonnet-4-5"): (Decimal(3), Decimal(15)),
        ("anthropic", "claude-sonnet-4-5-20250929"): (Decimal(4), Decimal(16)),
        ("openai", "gpt-4o"): (Decimal("2.5"), Decimal(10)),
    }
    pricing = Pricing(
        lambda kind, model: catalog.get((kind, model)), {"groq": (Decimal(1), Decimal(2))}
    )
    assert pricing.of("anthropic", "claude-sonnet-4-5-20250929").source == "catalog"  # type: ignore[union-attr]
    family = pricing.of("anthropic", "claude-sonnet-4-5-20251001")
    assert family is not None and (family.input_per_million, family.source) == (
        Decimal(3),
        "family",
    )
    assert pricing.of("openai", "gpt-4o-2024-05-13") is None  # priced apart by OpenAI
    assert pricing.of("groq", "anything").source == "default"  # type: ignore[union-attr]
    assert pricing.of("local", "my-model").cost(1000, 1000) == 0  # type: ignore[union-attr]
    assert pricing.of("openai_compatible", "x") is None
    assert pricing.unpriced([("openai", "gpt-4o"), ("custom", "a"), ("custom", "a")]) == [
        "custom/a"
    ]


async def test_embeddings_settle_their_reservation(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    database: Database,
    user_token: str,
    recorder: UsageRecorder,
) -> None:
    await with_budget(app, database, user_token)
    await sdk.embeddings.create(model="text-embedding-3-small", input=["a b c", "d e"])
    response = await asgi_http.get("/v2/users/me/limits", headers=bearer(user_token))
    usage = response.json()["user"]["usage"]
    [record] = await records(recorder)
    assert record.status == 200 and record.input_tokens == 5
    assert usage["in_flight"] == 0  # the reservation was replaced by what was used
    assert Decimal(usage["spent_usd"]) == record.cost_usd == Decimal(5 * 2) / Decimal(10**8)


async def test_a_failing_embeddings_call_settles_its_reservation_and_is_recorded(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
    recorder: UsageRecorder,
) -> None:
    await with_budget(app, database, user_token)
    upstream.fail_with(500)
    with pytest.raises(openai.APIStatusError) as failed:
        await sdk.embeddings.create(model="text-embedding-3-small", input=["a b c", "d e"])
    response = await asgi_http.get("/v2/users/me/limits", headers=bearer(user_token))
    usage = response.json()["user"]["usage"]
    assert usage["in_flight"] == 0  # the failure settled the reservation
    assert Decimal(usage["spent_usd"]) == 0
    [record] = await records(recorder)
    assert record.endpoint == "embeddings" and record.model == "text-embedding-3-small"
    assert record.status == failed.value.status_code >= 500 and record.error_code
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (0, 0, Decimal(0))
    assert record.provider == "openai" and record.attempts == len(upstream.requests) >= 1
