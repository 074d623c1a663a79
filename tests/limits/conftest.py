"""Fixtures for the limits tests: the gateway fixtures (fake upstream, provider, SDK), the
limits router on the app, a frozen clock for the enforcer, a Redis client with a key prefix
of the test's own, and apps sharing Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from modelyard.api.app import create_app
from modelyard.api.routes import limits as limits_routes
from modelyard.config import Settings
from modelyard.gateway.redis_client import create_redis
from modelyard.limits.counters import Counters, Plan
from modelyard.limits.enforcer import LimitEnforcer
from tests.gateway.conftest import asgi_http as asgi_http
from tests.gateway.conftest import openai_provider as openai_provider
from tests.gateway.conftest import sdk as sdk
from tests.gateway.conftest import upstream as upstream
from tests.gateway.conftest import user_token as user_token

REDIS_URL = "redis://127.0.0.1:6379/0"
#: 2025-03-12 10:20:05 UTC (a Wednesday): five seconds into a minute.
FROZEN = 1_741_774_805.0
#: The group (user) the counters tests admit in.
GROUP = "u1"


def admission(
    store: Counters,
    *plans: Plan,
    now: float = FROZEN,
    tokens: int = 10,
    rid: str | None = None,
    hold: float = 60.0,
) -> Coroutine[Any, Any, object]:
    """One admission of ``plans`` in :data:`GROUP` (not yet awaited)."""
    return store.admit(
        GROUP,
        plans,
        now=now,
        minute=int(now // 60),
        estimated_tokens=tokens,
        reservation_id=rid or uuid.uuid4().hex,
        hold_seconds=hold,
    )


def with_limits_router(app: FastAPI) -> FastAPI:
    """Include the limits API unless the app has it already (once the lead wires it)."""
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/v2/users/me/limits" not in paths:
        app.include_router(limits_routes.router)
    return app


class Clock:
    """A settable clock for the enforcer."""

    def __init__(self, now: float = FROZEN) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def freeze(app: FastAPI, clock: Callable[[], float]) -> LimitEnforcer:
    enforcer: LimitEnforcer = app.state.modelyard.limits
    enforcer.clock = clock
    return enforcer


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def enforcer(app: FastAPI, clock: Clock) -> LimitEnforcer:
    """The app's enforcer on the frozen clock, with the limits API on the app."""
    with_limits_router(app)
    return freeze(app, clock)


async def drop_prefix(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(f"{prefix}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = create_redis(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own, dropped after it."""
    name = f"test-{uuid.uuid4().hex}:"
    yield name
    await drop_prefix(redis_client, name)


@pytest.fixture
async def redis_apps(settings: Settings, clock: Clock) -> AsyncIterator[list[FastAPI]]:
    """Two app instances on the same database and Redis prefix, each its own enforcer."""
    shared = settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": f"test-{uuid.uuid4().hex}:"}
    )
    apps = [with_limits_router(create_app(shared, system_keys={})) for _ in range(2)]
    for app in apps:
        freeze(app, clock)
    yield apps
    await drop_prefix(apps[0].state.modelyard.gateway.redis, shared.redis_prefix)
    for app in apps:
        await app.state.modelyard.aclose()
