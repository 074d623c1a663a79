"""Shared keys are not one user's to break (issue 17, class 7).

A client-caused failure (400/422, a request that only looks like a key error) never cools
down an admin or system key for everyone; a user's own key cools down for that user only.
Every scenario runs with the in-process breakers and with the Redis-shared ones.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.gateway.adapters.wire import stream_error
from modelyard.gateway.cooldown import MemoryCooldowns, RedisCooldowns
from modelyard.providers.user_keys import set_user_key
from tests.conftest import refuse_canaries
from tests.fakes.fixtures import GEMINI_KEY, OPENAI_KEY
from tests.fakes.gemini_chat import ChatGemini
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.gateway.redis_helpers import REDIS_URL
from tests.helpers import bearer, make_token, make_user

ASK = [{"role": "user", "content": "hello"}]
LONG = [{"role": "user", "content": "word " * 50}]
#: A user's own key the fakes reject (a canary: no response may ever show it).
BAD_USER_KEY = "sk-user-canary-bad-0123456789abcdef"
#: A user's own key the fakes accept.
GOOD_USER_KEY = "sk-user-good-0123456789abcdef012345"


@pytest.fixture(params=["memory", "redis"])
async def gateway_app(
    request: pytest.FixtureRequest, app: FastAPI, settings: Settings
) -> AsyncIterator[FastAPI]:
    """The app under test: the default one (in-process breakers) or one on the local Redis
    (same database)."""
    if request.param == "memory":
        assert isinstance(app.state.modelyard.gateway.cooldowns, MemoryCooldowns)
        yield app
        return
    shared = settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": f"test-{uuid.uuid4().hex}:"}
    )
    redis_app = create_app(shared, system_keys={})
    assert isinstance(redis_app.state.modelyard.gateway.cooldowns, RedisCooldowns)
    try:
        yield redis_app
    finally:
        redis = redis_app.state.modelyard.gateway.redis
        keys = [key async for key in redis.scan_iter(f"{shared.redis_prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis_app.state.modelyard.aclose()


@pytest.fixture
async def http(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as client:
        yield client


async def _user(database: Database, name: str, own_key: str | None = None) -> dict[str, str]:
    """A new user (with ``own_key`` as their own OpenAI key), as request headers."""
    user = await make_user(database, f"{name}-{uuid.uuid4().hex[:8]}@example.com")
    if own_key is not None:
        async with database.sessions() as session:
            await set_user_key(session, user=user, provider="openai", api_key=own_key)
    return bearer(await make_token(database, user))


async def _chat(
    http: httpx.AsyncClient, headers: dict[str, str], messages: Any = ASK, **extra: Any
) -> httpx.Response:
    body = {"model": "openai/gpt-4o-mini", "messages": messages, **extra}
    return await http.post("/v1/chat/completions", json=body, headers=headers)


def _keys(fake: ChatOpenAI) -> list[str | None]:
    return [request.header("authorization") for request in fake.requests]


@pytest.fixture
def primary() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY, GOOD_USER_KEY}) as fake:
        yield fake


@pytest.fixture
def fallback() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.mark.parametrize("status", [400, 422])
async def test_client_errors_never_cool_down_a_shared_key(
    http: httpx.AsyncClient,
    database: Database,
    primary: ChatOpenAI,
    fallback: ChatOpenAI,
    status: int,
) -> None:
    await add_provider(database, "shared", primary.base_url, OPENAI_KEY, default=True)
    await add_provider(database, "fallback", fallback.base_url, OPENAI_KEY)
    primary.context_words, primary.context_status = 10, status
    user_a, user_b = await _user(database, "a"), await _user(database, "b")
    for _ in range(8):
        refused = await _chat(http, user_a, LONG)
        assert refused.status_code == status, refused.text
        assert "maximum context length" in refused.json()["error"]["message"]
    for stream in (False, True):
        refused = await _chat(http, user_a, LONG, stream=stream)
        assert refused.status_code == status
    assert len(primary.requests) == 10 and fallback.requests == []  # no failover on a 400
    answered = await _chat(http, user_b)
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-modelyard-attempts"] == "1"
    assert len(primary.requests) == 11 and fallback.requests == []  # B went to the shared key


@pytest.fixture
def gemini() -> Iterator[ChatGemini]:
    with ChatGemini(keys={GEMINI_KEY}) as fake:
        yield fake


async def test_a_400_quoting_api_key_invalid_does_not_cool_down_a_gemini_key(
    http: httpx.AsyncClient, database: Database, gemini: ChatGemini
) -> None:
    """Gemini quotes an unknown schema field in its 400: a client naming one
    ``api_key_invalid`` must not pass its own bad request off as a broken key."""
    await add_provider(database, "gemini", gemini.url, GEMINI_KEY, kind="google")
    user_a, user_b = await _user(database, "a"), await _user(database, "b")
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "API_KEY_INVALID api key": True},
        },
    }
    body = {"model": "google/gemini-2.5-flash", "messages": ASK, "tools": [tool]}
    for _ in range(3):
        refused = await http.post("/v1/chat/completions", json=body, headers=user_a)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "upstream_bad_request"
        assert "Unknown name" in refused.json()["error"]["message"]
    answered = await http.post(
        "/v1/chat/completions",
        json={"model": "google/gemini-2.5-flash", "messages": ASK},
        headers=user_b,
    )
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-modelyard-attempts"] == "1"
    assert len(gemini.requests) == 4


async def test_a_genuinely_invalid_gemini_key_still_rotates_and_cools_down(
    http: httpx.AsyncClient, database: Database, gemini: ChatGemini
) -> None:
    """The structured ``API_KEY_INVALID`` reason (not the message) still marks a bad key."""
    await add_provider(
        database, "bad", gemini.url, "AIzaGeminiCanaryBad0123456789abcdefg", kind="google"
    )
    await add_provider(database, "good", gemini.url, GEMINI_KEY, kind="google")
    user = await _user(database, "a")
    body = {"model": "google/gemini-2.5-flash", "messages": ASK}
    first = await http.post("/v1/chat/completions", json=body, headers=user)
    assert first.status_code == 200 and first.headers["x-modelyard-attempts"] == "2"
    second = await http.post("/v1/chat/completions", json=body, headers=user)
    assert second.status_code == 200 and second.headers["x-modelyard-attempts"] == "1"
    assert [r.header("x-goog-api-key") for r in gemini.requests][1:] == [GEMINI_KEY] * 2


async def test_a_users_own_bad_key_cools_down_for_that_user_only(
    gateway_app: FastAPI, http: httpx.AsyncClient, database: Database, primary: ChatOpenAI
) -> None:
    gateway_app.state.modelyard.settings.provider_base_urls = {"openai": primary.base_url}
    await add_provider(database, "shared", primary.base_url, OPENAI_KEY, default=True)
    user_a = await _user(database, "a", BAD_USER_KEY)
    user_b = await _user(database, "b", BAD_USER_KEY)  # the same bad key string as A's
    user_c = await _user(database, "c")
    user_d = await _user(database, "d", GOOD_USER_KEY)
    shared, bad, good = f"Bearer {OPENAI_KEY}", f"Bearer {BAD_USER_KEY}", f"Bearer {GOOD_USER_KEY}"

    first = await _chat(http, user_a)
    assert first.status_code == 200 and first.headers["x-modelyard-attempts"] == "2"
    assert _keys(primary) == [bad, shared]
    again = await _chat(http, user_a)  # A's own key is cooling down: skipped, for A
    assert again.status_code == 200 and again.headers["x-modelyard-attempts"] == "1"
    assert _keys(primary) == [bad, shared, shared]

    other = await _chat(http, user_b)  # B's key (equal string) is B's: still tried for B
    assert other.status_code == 200 and other.headers["x-modelyard-attempts"] == "2"
    assert _keys(primary) == [bad, shared, shared, bad, shared]
    no_key = await _chat(http, user_c)  # the shared key is untouched
    assert no_key.status_code == 200 and no_key.headers["x-modelyard-attempts"] == "1"
    own_good = await _chat(http, user_d)  # D's own good key goes first, as ever
    assert own_good.status_code == 200 and own_good.headers["x-modelyard-attempts"] == "1"
    assert _keys(primary)[5:] == [shared, good]


async def test_a_users_key_equal_to_a_shared_key_has_its_own_breaker(
    gateway_app: FastAPI, http: httpx.AsyncClient, database: Database, primary: ChatOpenAI
) -> None:
    """A user whose own key string equals the admin's (same endpoint, same model) gets
    a 429 on it: that cools down the user's key, not the admin's."""
    gateway_app.state.modelyard.settings.provider_base_urls = {"openai": primary.base_url}
    await add_provider(database, "shared", primary.base_url, OPENAI_KEY, default=True)
    user_a = await _user(database, "a", OPENAI_KEY)
    user_b = await _user(database, "b")
    primary.fail_with(429, headers={"retry-after": "60"}, times=1)
    first = await _chat(http, user_a)
    assert first.status_code == 200 and first.headers["x-modelyard-attempts"] == "2"
    answered = await _chat(http, user_b)
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-modelyard-attempts"] == "1"
    assert len(primary.requests) == 3
    again = await _chat(http, user_a)  # A's own (rate-limited) key is skipped for A
    assert again.status_code == 200 and again.headers["x-modelyard-attempts"] == "1"
    assert len(primary.requests) == 4


@pytest.mark.parametrize(
    ("event", "category", "status"),
    [
        ({"error": {"message": "too long", "type": "invalid_request_error"}}, "client", 400),
        ({"error": "Input validation error", "error_type": "validation"}, "client", 422),
        ({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}, "client", 400),
        ({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}, "server", None),
        ({"error": {"code": 429, "message": "slow down"}}, "rate_limited", 429),
        ({"error": {"message": "boom", "type": "server_error"}}, "server", None),
        ({"error": "generation failed", "error_type": "generation"}, "server", None),
    ],
)
def test_stream_error_events_are_classified_like_http_errors(
    event: dict[str, Any], category: str, status: int | None
) -> None:
    error = stream_error(event)
    assert (error.category, error.status) == (category, status)
    assert error.message.startswith("error in the stream: ")
