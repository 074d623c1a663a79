"""Cooldowns, recovery through a half-open probe, the response cache, metrics and headers —
in one process and shared by two app instances through the local Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
from fastapi import FastAPI

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.gateway.cooldown import key_fingerprint
from tests.conftest import refuse_canaries
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.conftest import add_provider

REDIS_URL = "redis://127.0.0.1:6379/0"
CANARY = "sk-cooldown-canary-0123456789abcdef"
ASK = [{"role": "user", "content": "hello"}]


@pytest.fixture
def primary() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture
async def two_providers(
    database: Database, primary: ChatOpenAI, upstream: ChatOpenAI
) -> tuple[ChatOpenAI, ChatOpenAI]:
    """``primary`` (the default) first, then ``upstream`` as the fallback."""
    await add_provider(database, "primary", primary.base_url, OPENAI_KEY, default=True)
    await add_provider(database, "fallback", upstream.base_url, OPENAI_KEY)
    return primary, upstream


async def test_rate_limited_key_cools_down_then_recovers_through_a_probe(
    sdk: openai.AsyncOpenAI, two_providers: tuple[ChatOpenAI, ChatOpenAI]
) -> None:
    primary, fallback = two_providers
    primary.fail_with(429, headers={"retry-after": "1"})
    first = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert first.headers["x-modelyard-attempts"] == "2"
    second = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert second.headers["x-modelyard-attempts"] == "1"  # the cooling key is skipped
    assert len(primary.requests) == 1 and len(fallback.requests) == 2

    primary.reset()  # healthy again
    await asyncio.sleep(1.1)  # Retry-After has passed: the breaker is half-open
    probe = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert probe.headers["x-modelyard-attempts"] == "1"
    assert len(primary.requests) == 1 and len(fallback.requests) == 2  # the probe went to primary
    again = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert len(primary.requests) == 2 and again.headers["x-modelyard-attempts"] == "1"


async def test_an_invalid_key_is_skipped_for_a_while(
    sdk: openai.AsyncOpenAI, database: Database, upstream: ChatOpenAI
) -> None:
    await add_provider(database, "bad", upstream.base_url, CANARY, default=True)
    await add_provider(database, "good", upstream.base_url, OPENAI_KEY)
    for _ in range(3):
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    keys = [request.header("authorization") for request in upstream.requests]
    assert keys == [f"Bearer {CANARY}", *[f"Bearer {OPENAI_KEY}"] * 3]


async def test_every_key_cooling_down_is_a_503(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI, database: Database
) -> None:
    await add_provider(database, "only", upstream.base_url, OPENAI_KEY)
    upstream.fail_with(429, headers={"retry-after": "30"})
    with pytest.raises(openai.RateLimitError):
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    with pytest.raises(openai.InternalServerError) as cooling:
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert cooling.value.status_code == 503
    assert "cooling down" in cooling.value.message
    assert len(upstream.requests) == 1


async def test_the_deadline_bounds_the_whole_request(
    app: FastAPI, sdk: openai.AsyncOpenAI, openai_provider: int, upstream: ChatOpenAI
) -> None:
    app.state.modelyard.gateway.dispatcher.deadline = 0.5
    upstream.delay = 3
    started = asyncio.get_running_loop().time()
    with pytest.raises(openai.APIStatusError) as late:
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert late.value.status_code == 503 and "no answer within" in late.value.message
    assert asyncio.get_running_loop().time() - started < 2.5


async def test_response_cache_per_route_and_per_request(
    sdk: openai.AsyncOpenAI, openai_provider: int, upstream: ChatOpenAI
) -> None:
    cached = sdk.with_options(default_headers={"x-modelyard-cache": "60"})
    first = await cached.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0
    )
    second = await cached.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0
    )
    assert first.headers["x-modelyard-cache"] == "miss"
    assert second.headers["x-modelyard-cache"] == "hit"
    assert second.parse().choices[0].message.content == "Echo: hello"
    assert len(upstream.requests) == 1
    other = await cached.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0.5
    )
    assert other.headers["x-modelyard-cache"] == "miss" and len(upstream.requests) == 2
    plain = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, temperature=0
    )
    assert plain.headers["x-modelyard-cache"] == "off" and len(upstream.requests) == 3


async def test_headers_and_metrics(
    sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    two_providers: tuple[ChatOpenAI, ChatOpenAI],
) -> None:
    primary, _fallback = two_providers
    primary.fail_with(503)
    raw = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    assert float(raw.headers["x-modelyard-overhead-ms"]) >= 0
    assert raw.headers["x-modelyard-provider"] == "openai"
    metrics = (await asgi_http.get("/metrics")).text
    fingerprint = key_fingerprint(OPENAI_KEY)
    assert (
        f'modelyard_gateway_attempts_total{{key="{fingerprint}",model="gpt-4o-mini",'
        'outcome="server",provider="openai"}'
        in metrics
        or f'key="{fingerprint}"' in metrics
    )
    assert OPENAI_KEY not in metrics
    assert 'modelyard_gateway_failovers_total{reason="server"} 1.0' in metrics
    assert 'direction="output"' in metrics and "modelyard_gateway_tokens_total" in metrics
    assert 'modelyard_gateway_cost_usd_total{model="gpt-4o-mini",provider="openai"}' in metrics
    assert (
        'modelyard_gateway_requests_total{model="gpt-4o-mini",provider="openai",route="",'
        'status="ok"} 1.0' in metrics
    )


# -- two app instances sharing Redis ----------------------------------------------------


@pytest.fixture
async def redis_apps(settings: Settings) -> AsyncIterator[list[FastAPI]]:
    shared = settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": f"test-{uuid.uuid4().hex}:"}
    )
    apps = [create_app(shared, system_keys={}) for _ in range(2)]
    yield apps
    redis = apps[0].state.modelyard.gateway.redis
    keys = [key async for key in redis.scan_iter(f"{shared.redis_prefix}*")]
    if keys:
        await redis.delete(*keys)
    for app in apps:
        await app.state.modelyard.aclose()


def _sdk(app: FastAPI, token: str, http: list[httpx.AsyncClient]) -> openai.AsyncOpenAI:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    )
    http.append(client)
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=token, http_client=client, max_retries=0
    )


async def test_cooldowns_and_cache_are_shared_through_redis(
    redis_apps: list[FastAPI],
    user_token: str,
    two_providers: tuple[ChatOpenAI, ChatOpenAI],
) -> None:
    primary, fallback = two_providers
    clients: list[httpx.AsyncClient] = []
    one, two = (_sdk(app, user_token, clients) for app in redis_apps)
    try:
        primary.fail_with(429, headers={"retry-after": "30"})
        await one.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        raw = await two.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
        assert raw.headers["x-modelyard-attempts"] == "1"
        assert len(primary.requests) == 1  # the second app skipped the cooling key

        cached = {"x-modelyard-cache": "60"}
        await one.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, extra_headers=cached, seed=7
        )
        hit = await two.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, extra_headers=cached, seed=7
        )
        assert hit.headers["x-modelyard-cache"] == "hit"
        assert len(fallback.requests) == 3
    finally:
        for client in clients:
            await client.aclose()
