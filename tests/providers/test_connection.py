"""The provider "test connection" check, against fake providers over real HTTP."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from modelyard.gateway.http import UpstreamHttp
from modelyard.providers.connection import MAX_MODELS, ConnectionResult, check_connection
from modelyard.providers.kinds import ProviderKind
from tests.fakes import FakeCustom, FakeOpenAI, FakeServer, closed_port
from tests.fakes.fixtures import (
    ANTHROPIC_KEY,
    CUSTOM_KEY,
    GEMINI_KEY,
    GROQ_KEY,
    HUGGINGFACE_KEY,
    OPENAI_KEY,
)
from tests.fakes.fixtures import fake_anthropic as fake_anthropic
from tests.fakes.fixtures import fake_custom as fake_custom
from tests.fakes.fixtures import fake_gemini as fake_gemini
from tests.fakes.fixtures import fake_groq as fake_groq
from tests.fakes.fixtures import fake_huggingface as fake_huggingface
from tests.fakes.fixtures import fake_openai as fake_openai
from tests.fakes.providers import FakeAnthropic, FakeGemini, FakeGroq, FakeHuggingFace
from tests.fakes.recording_http import RecordingHttp

#: Wrong keys the fakes echo back in their error bodies. Some are key-shaped (masked by
#: the patterns), some are not (masked only because check_connection registers the key).
CANARY = "sk-CANARY0123456789abcdefWRONG"
PLAIN_CANARY = "plain-canary-token-3f9a1c77e2"
CANARIES = (CANARY, PLAIN_CANARY)


def assert_clean(result: ConnectionResult) -> None:
    """The message is one line and holds no canary nor any fake's real key."""
    assert "\n" not in result.message and result.message.strip() == result.message
    for secret in (*CANARIES, OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY, GROQ_KEY, CUSTOM_KEY):
        assert secret not in result.message
        assert secret[4:20] not in result.message


# -- success, per kind ------------------------------------------------------------------


async def test_openai_lists_models_with_bearer_and_organization(
    fake_openai: FakeOpenAI, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind=ProviderKind.OPENAI,
        base_url=fake_openai.base_url + "/",
        api_key=OPENAI_KEY,
        organization="org-fake123",
        http=upstream_http,
    )
    assert result.ok, result.message
    assert result.status_code == 200
    assert result.message == "Connected: 5 models available"
    assert result.models == tuple(fake_openai.models)
    assert result.latency_ms > 0
    request = fake_openai.last_request
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.header("authorization") == f"Bearer {OPENAI_KEY}"
    assert request.header("openai-organization") == "org-fake123"
    assert len(fake_openai.requests) == 1
    assert_clean(result)


async def test_openai_without_organization_sends_no_header(
    fake_openai: FakeOpenAI, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind="openai", base_url=fake_openai.base_url, api_key=OPENAI_KEY, http=upstream_http
    )
    assert result.ok
    assert fake_openai.last_request.header("openai-organization") is None


async def test_openai_unknown_organization_is_unauthorized(upstream_http: UpstreamHttp) -> None:
    with FakeOpenAI(keys={OPENAI_KEY}, organizations={"org-good"}) as fake:
        result = await check_connection(
            kind="openai",
            base_url=fake.base_url,
            api_key=OPENAI_KEY,
            organization="org-bad",
            http=upstream_http,
        )
    assert not result.ok
    assert result.status_code == 401
    assert "No such organization: org-bad" in result.message


async def test_groq_uses_its_openai_path(fake_groq: FakeGroq, upstream_http: UpstreamHttp) -> None:
    result = await check_connection(
        kind="groq", base_url=fake_groq.base_url, api_key=GROQ_KEY, http=upstream_http
    )
    assert result.ok, result.message
    assert result.models == tuple(fake_groq.models)
    assert fake_groq.last_request.path == "/openai/v1/models"
    assert fake_groq.last_request.header("authorization") == f"Bearer {GROQ_KEY}"


async def test_huggingface_router(
    fake_huggingface: FakeHuggingFace, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind=ProviderKind.HUGGINGFACE,
        base_url=fake_huggingface.base_url,
        api_key=HUGGINGFACE_KEY,
        http=upstream_http,
    )
    assert result.ok, result.message
    assert result.message == "Connected: 2 models available"
    assert fake_huggingface.last_request.path == "/v1/models"


async def test_anthropic_sends_key_and_version(
    fake_anthropic: FakeAnthropic, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind="anthropic", base_url=fake_anthropic.url, api_key=ANTHROPIC_KEY, http=upstream_http
    )
    assert result.ok, result.message
    assert result.models == tuple(fake_anthropic.models)
    assert result.message == "Connected: 3 models available"
    request = fake_anthropic.last_request
    assert request.path == "/v1/models"
    assert request.header("x-api-key") == ANTHROPIC_KEY
    assert request.header("anthropic-version") == "2023-06-01"
    assert request.header("authorization") is None


async def test_anthropic_more_models_than_a_page(upstream_http: UpstreamHttp) -> None:
    models = [f"claude-fake-{n}" for n in range(25)]
    with FakeAnthropic(keys={ANTHROPIC_KEY}, models=models) as fake:
        result = await check_connection(
            kind="anthropic", base_url=fake.url, api_key=ANTHROPIC_KEY, http=upstream_http
        )
    assert result.ok
    assert result.message == "Connected: 20+ models available"
    assert result.models == tuple(models[:MAX_MODELS])


async def test_gemini_strips_models_prefix(
    fake_gemini: FakeGemini, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind="google", base_url=fake_gemini.url, api_key=GEMINI_KEY, http=upstream_http
    )
    assert result.ok, result.message
    assert result.models == ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash")
    request = fake_gemini.last_request
    assert request.path == "/v1beta/models"
    assert request.header("x-goog-api-key") == GEMINI_KEY
    assert "key" not in request.params  # the key travels in a header, not in the URL


async def test_at_most_twenty_models_are_kept(upstream_http: UpstreamHttp) -> None:
    models = [f"model-{n:02d}" for n in range(30)]
    with FakeOpenAI(keys={OPENAI_KEY}, models=models) as fake:
        result = await check_connection(
            kind="openai", base_url=fake.base_url, api_key=OPENAI_KEY, http=upstream_http
        )
    assert result.message == "Connected: 30 models available"
    assert result.models == tuple(models[:20])


async def test_custom_test_endpoint(fake_custom: FakeCustom, upstream_http: UpstreamHttp) -> None:
    result = await check_connection(
        kind="custom", base_url=fake_custom.url, api_key=CUSTOM_KEY, http=upstream_http
    )
    assert result.ok, result.message
    assert result.status_code == 200
    assert "pong" in result.message
    assert result.models == ()
    assert fake_custom.last_request.path == "/test"
    assert fake_custom.last_request.header("authorization") == f"Bearer {CUSTOM_KEY}"


async def test_custom_any_2xx_without_json_is_ok(upstream_http: UpstreamHttp) -> None:
    with FakeCustom(keys={CUSTOM_KEY}, status=204, body=b"") as fake:
        result = await check_connection(
            kind="custom", base_url=fake.url, api_key=CUSTOM_KEY, http=upstream_http
        )
    assert result.ok, result.message
    assert result.status_code == 204


async def test_custom_rejected_token_is_masked(
    fake_custom: FakeCustom, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind="custom", base_url=fake_custom.url, api_key=PLAIN_CANARY, http=upstream_http
    )
    assert not result.ok
    assert result.status_code == 401
    assert "invalid token ****" in result.message  # the fake echoed it; it was masked
    assert_clean(result)


async def test_openai_compatible_without_key_sends_no_authorization(
    fake_openai: FakeOpenAI, upstream_http: UpstreamHttp
) -> None:
    fake_openai.keys.clear()
    fake_openai.status, fake_openai.body = 200, {"object": "list", "data": [{"id": "llama3"}]}
    result = await check_connection(
        kind="openai_compatible", base_url=fake_openai.base_url, api_key=None, http=upstream_http
    )
    assert result.ok, result.message
    assert result.models == ("llama3",)
    assert result.message == "Connected: 1 model available"
    assert fake_openai.last_request.header("authorization") is None


async def test_openai_compatible_without_key_when_one_is_required(
    fake_openai: FakeOpenAI, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind="openai_compatible", base_url=fake_openai.base_url, api_key="", http=upstream_http
    )
    assert not result.ok
    assert result.status_code == 401
    assert "requires an API key" in result.message


async def test_local_needs_no_network(no_network: UpstreamHttp) -> None:
    result = await check_connection(kind="local", base_url=None, api_key=None, http=no_network)
    assert result == ConnectionResult(
        True, "Local models run in-process; nothing to connect to.", None, 0.0
    )


# -- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fake_type", "wrong_key"),
    [
        ("openai", FakeOpenAI, CANARY),
        ("openai", FakeOpenAI, PLAIN_CANARY),
        ("groq", FakeGroq, PLAIN_CANARY),
        ("huggingface", FakeHuggingFace, CANARY),
        ("anthropic", FakeAnthropic, PLAIN_CANARY),
        ("google", FakeGemini, PLAIN_CANARY),
    ],
)
async def test_wrong_key_is_unauthorized(
    kind: str,
    fake_type: type[FakeOpenAI | FakeAnthropic | FakeGemini],
    wrong_key: str,
    upstream_http: UpstreamHttp,
) -> None:
    with fake_type(keys={"the-right-key-0123456789"}) as fake:
        result = await check_connection(
            kind=kind, base_url=fake.base_url, api_key=wrong_key, http=upstream_http
        )
        sent = fake.last_request
    assert not result.ok
    assert result.message.startswith("Unauthorized (HTTP "), result.message
    assert "rejected the API key; check or replace it" in result.message
    assert result.status_code == (400 if kind == "google" else 401)
    assert any(wrong_key in value for value in sent.headers.values())  # sent as given...
    assert_clean(result)  # ...and the echoed key is masked in the message


async def test_openai_echoed_key_is_masked_even_in_the_detail(
    fake_openai: FakeOpenAI, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind="openai", base_url=fake_openai.base_url, api_key=PLAIN_CANARY, http=upstream_http
    )
    assert "Incorrect API key provided: ****" in result.message
    assert_clean(result)


async def test_forbidden(fake_gemini: FakeGemini, upstream_http: UpstreamHttp) -> None:
    fake_gemini.fail_with(403)
    result = await check_connection(
        kind="google", base_url=fake_gemini.url, api_key=GEMINI_KEY, http=upstream_http
    )
    assert not result.ok
    assert result.status_code == 403
    assert result.message.startswith("Forbidden (HTTP 403)")


async def test_rate_limited(fake_anthropic: FakeAnthropic, upstream_http: UpstreamHttp) -> None:
    fake_anthropic.fail_with(429)
    result = await check_connection(
        kind="anthropic", base_url=fake_anthropic.url, api_key=ANTHROPIC_KEY, http=upstream_http
    )
    assert not result.ok
    assert result.status_code == 429
    assert "Rate limited" in result.message
    assert "probably valid" in result.message
    assert "retry after 1 s" in result.message


async def test_server_error_quotes_the_body_masked(
    fake_openai: FakeOpenAI, upstream_http: UpstreamHttp
) -> None:
    body = {"error": {"message": f"upstream exploded; key was {PLAIN_CANARY}", "type": "x"}}
    fake_openai.fail_with(500, body)
    result = await check_connection(
        kind="openai", base_url=fake_openai.base_url, api_key=PLAIN_CANARY, http=upstream_http
    )
    assert not result.ok
    assert result.status_code == 500
    host = fake_openai.url.removeprefix("http://")
    assert result.message.startswith(f"HTTP 500 from {host}: "), result.message
    assert "upstream exploded; key was ****" in result.message
    assert_clean(result)


async def test_long_error_body_is_cut(fake_openai: FakeOpenAI, upstream_http: UpstreamHttp) -> None:
    fake_openai.fail_with(502, "x" * 150 + "\n" + "y" * 500)
    result = await check_connection(
        kind="openai", base_url=fake_openai.base_url, api_key=OPENAI_KEY, http=upstream_http
    )
    assert result.status_code == 502
    assert "x" * 150 + " " + "y" * 49 in result.message
    assert "y" * 60 not in result.message
    assert "\n" not in result.message


async def test_wrong_base_url_hints_at_it(
    fake_openai: FakeOpenAI, upstream_http: UpstreamHttp
) -> None:
    result = await check_connection(
        kind="openai_compatible", base_url=fake_openai.url, api_key=OPENAI_KEY, http=upstream_http
    )
    assert result.status_code == 404
    assert "check the base URL" in result.message


async def test_invalid_json_on_success(
    fake_openai: FakeOpenAI, upstream_http: UpstreamHttp
) -> None:
    fake_openai.fail_with(200, "<html>hello</html>", {"content-type": "text/html"})
    result = await check_connection(
        kind="openai", base_url=fake_openai.base_url, api_key=OPENAI_KEY, http=upstream_http
    )
    assert not result.ok
    assert result.status_code == 200
    assert "not valid JSON" in result.message


async def test_json_without_a_model_list(
    fake_gemini: FakeGemini, upstream_http: UpstreamHttp
) -> None:
    fake_gemini.fail_with(200, {"hello": "world"})
    result = await check_connection(
        kind="google", base_url=fake_gemini.url, api_key=GEMINI_KEY, http=upstream_http
    )
    assert not result.ok
    assert '"models" list' in result.message


async def test_timeout(fake_openai: FakeOpenAI, upstream_http: UpstreamHttp) -> None:
    fake_openai.delay = 5
    started = time.monotonic()
    result = await check_connection(
        kind="openai",
        base_url=fake_openai.base_url,
        api_key=OPENAI_KEY,
        http=upstream_http,
        timeout=0.3,
    )
    assert time.monotonic() - started < 3
    assert not result.ok
    assert result.status_code is None
    host = fake_openai.url.removeprefix("http://")
    assert result.message.startswith(f"Timed out after 0.3 s waiting for {host}"), result.message
    assert result.latency_ms >= 300
    assert len(fake_openai.requests) == 1


async def test_connection_refused(upstream_http: UpstreamHttp) -> None:
    port = closed_port()
    result = await check_connection(
        kind="openai",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=CANARY,
        http=upstream_http,
    )
    assert not result.ok
    assert result.status_code is None
    assert result.message.startswith(f"Could not connect to 127.0.0.1:{port}: "), result.message
    assert_clean(result)


async def test_invalid_base_url(upstream_http: UpstreamHttp) -> None:
    result = await check_connection(
        kind="openai_compatible", base_url="localhost:8000/v1", api_key=None, http=upstream_http
    )
    assert not result.ok
    assert "Invalid base URL" in result.message


@pytest.mark.parametrize(
    ("kind", "env_var"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("google", "GOOGLE_API_KEY"),
        ("groq", "GROQ_API_KEY"),
        ("huggingface", "HF_TOKEN"),
        ("custom", None),
    ],
)
async def test_missing_key_makes_no_request(
    kind: str, env_var: str | None, no_network: UpstreamHttp
) -> None:
    result = await check_connection(
        kind=kind, base_url="http://127.0.0.1:9", api_key="  ", http=no_network
    )
    assert not result.ok
    assert result.status_code is None
    assert result.message.startswith("No API key for ")
    assert "add one" in result.message
    if env_var is not None:
        assert env_var in result.message


@pytest.mark.parametrize("kind", ["openai_compatible", "custom"])
async def test_missing_base_url(kind: str, upstream_http: UpstreamHttp) -> None:
    result = await check_connection(kind=kind, base_url=None, api_key=CANARY, http=upstream_http)
    assert not result.ok
    assert "needs a base URL" in result.message
    assert_clean(result)


async def test_default_base_url_is_used() -> None:
    seen: list[str] = []

    def handler(method: str, url: str) -> tuple[int, Any]:
        seen.append(url)
        return 200, {"models": []}

    result = await check_connection(
        kind="google", base_url=None, api_key=GEMINI_KEY, http=RecordingHttp(handler)
    )
    assert seen == ["https://generativelanguage.googleapis.com/v1beta/models"]
    assert result.ok
    assert result.message == "Connected, but the provider lists no models."


async def test_unknown_kind(upstream_http: UpstreamHttp) -> None:
    result = await check_connection(
        kind="telepathy", base_url=None, api_key=None, http=upstream_http
    )
    assert not result.ok
    assert "Unknown provider kind" in result.message


# -- the fake server itself -------------------------------------------------------------


def test_fake_server_stops_fast_and_frees_its_port() -> None:
    fake = FakeOpenAI(keys={OPENAI_KEY}, delay=30)
    with fake:
        server = fake.server
        assert server is not None
        thread = server.thread
        port = server.port
        assert thread is not None and thread.is_alive()

        def stuck_request() -> None:
            try:
                httpx.get(f"{fake.base_url}/models", timeout=30, trust_env=False)
            except httpx.HTTPError:
                pass

        client_thread = threading.Thread(target=stuck_request, daemon=True)
        client_thread.start()
        deadline = time.monotonic() + 5
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.requests
        started = time.monotonic()
    assert time.monotonic() - started < 2
    assert not thread.is_alive()
    client_thread.join(5)
    assert not client_thread.is_alive()
    fake.delay = 0
    with FakeServer(fake.app(), port=port or 0) as again:  # the port is free again
        assert again.port == port
        assert httpx.get(f"{again.url}/v1/models", trust_env=False).status_code == 401
