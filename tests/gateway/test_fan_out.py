"""``n`` choices from APIs that answer one per call: the gateway calls them ``n`` times."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.gateway import route_records
from modelyard.gateway.route_specs import RouteSpec
from tests.fakes.anthropic_chat import ChatAnthropic
from tests.fakes.fixtures import ANTHROPIC_KEY, HUGGINGFACE_KEY
from tests.fakes.hf_inference import FakeHfInference
from tests.gateway.chat_stream import answer, stream_chunks
from tests.gateway.conftest import add_provider

CLAUDE = "anthropic/claude-x"
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def anthropic() -> Iterator[ChatAnthropic]:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.fixture(autouse=True)
async def anthropic_provider(database: Database, anthropic: ChatAnthropic) -> int:
    return await add_provider(database, "claude", anthropic.url, ANTHROPIC_KEY, kind="anthropic")


def _counts(usage: dict[str, Any]) -> tuple[int, int, int]:
    return usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]


async def test_n_choices_from_n_anthropic_calls(
    asgi_http: httpx.AsyncClient, user_token: str, anthropic: ChatAnthropic
) -> None:
    one = await answer(asgi_http, user_token, {"model": CLAUDE, "messages": HELLO})
    single = _counts(one.json()["usage"])
    anthropic.requests.clear()

    three = await answer(asgi_http, user_token, {"model": CLAUDE, "messages": HELLO, "n": 3})
    assert three.status_code == 200
    body = three.json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2]
    assert {choice["message"]["content"] for choice in body["choices"]} == {"Echo: hello there"}
    assert _counts(body["usage"]) == tuple(3 * count for count in single)
    assert len(anthropic.requests) == 3
    assert all("n" not in request.json() for request in anthropic.requests)
    assert three.headers["x-modelyard-attempts"] == "1"


async def test_n_by_calls_on_hugging_face_direct_inference(
    app: FastAPI, database: Database, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    with FakeHfInference(keys={HUGGINGFACE_KEY}) as hf:
        app.state.modelyard.settings.hf_inference_url = f"{hf.url}/models"
        await add_provider(
            database, "hf", "http://127.0.0.1:9/v1", HUGGINGFACE_KEY, kind="huggingface"
        )
        spec = RouteSpec(
            name="zephyr-direct",
            targets=[
                {
                    "provider": "huggingface",
                    "endpoint": "direct",
                    "model": "HuggingFaceH4/zephyr-7b-beta",
                }
            ],
        )
        async with database.sessions() as session:
            await route_records.create_route(session, actor=None, spec=spec)
        response = await answer(
            asgi_http, user_token, {"model": "zephyr-direct", "messages": HELLO, "n": 2}
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["choices"]) == 2
        assert len(hf.requests) == 2


async def test_one_failed_call_fails_the_request(
    asgi_http: httpx.AsyncClient, user_token: str, anthropic: ChatAnthropic
) -> None:
    anthropic.status, anthropic.fail_times = 400, 1
    response = await answer(asgi_http, user_token, {"model": CLAUDE, "messages": HELLO, "n": 3})
    assert response.status_code == 400
    assert "choices" not in response.json()


async def test_streaming_n_from_a_one_choice_api_is_refused(
    asgi_http: httpx.AsyncClient, user_token: str, anthropic: ChatAnthropic
) -> None:
    response, chunks = await stream_chunks(
        asgi_http, user_token, {"model": CLAUDE, "messages": HELLO, "n": 2}
    )
    assert response.status_code == 400 and chunks == []
    error = response.json()["error"]
    assert error["param"] == "n" and error["code"] == "unsupported_parameter"
    assert "stream" in error["message"]
    assert anthropic.requests == []
    response, chunks = await stream_chunks(
        asgi_http, user_token, {"model": CLAUDE, "messages": HELLO, "n": 1}
    )
    assert response.status_code == 200 and chunks
