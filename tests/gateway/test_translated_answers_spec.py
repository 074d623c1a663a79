"""Every answer the gateway translates from another API (Gemini, Anthropic, Hugging Face
direct inference) is what OpenAI's spec describes: ``CreateChatCompletionResponse`` and,
streamed, ``CreateChatCompletionStreamResponse`` chunks (local models:
``tests/local/test_local_choices.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.gateway import route_records
from modelyard.gateway.route_specs import RouteSpec
from tests.fakes.anthropic_chat import ChatAnthropic
from tests.fakes.fixtures import ANTHROPIC_KEY, GEMINI_KEY, HUGGINGFACE_KEY
from tests.fakes.gemini_chat import ChatGemini
from tests.fakes.hf_inference import FakeHfInference
from tests.gateway.chat_stream import answer, choices_by_index, stream_chunks
from tests.gateway.conftest import add_provider

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASK = [{"role": "user", "content": "what is the weather in Paris"}]
#: What the fake Gemini answers when a test wants a tool call (the fake Anthropic calls
#: the tool on its own when asked about the weather).
GEMINI_CALL: list[dict[str, Any]] = [
    {"text": "Let me check."},
    {"functionCall": {"name": "get_weather", "args": {}}},
]


@pytest.fixture(params=["gemini", "anthropic", "hf_direct"])
async def model(
    request: pytest.FixtureRequest, app: FastAPI, database: Database
) -> AsyncIterator[str]:
    """A model name served by the translating adapter ``request.param``; the tool-calling
    ones call the weather tool when they are given it."""
    kind = request.param
    if kind == "gemini":
        with ChatGemini(keys={GEMINI_KEY}) as gemini:
            await add_provider(database, "gemini", gemini.url, GEMINI_KEY, kind="google")
            gemini.parts = GEMINI_CALL if "tool" in request.node.name else None
            yield "google/gemini-2.5-flash"
    elif kind == "anthropic":
        with ChatAnthropic(keys={ANTHROPIC_KEY}) as anthropic:
            await add_provider(database, "claude", anthropic.url, ANTHROPIC_KEY, kind="anthropic")
            yield "anthropic/claude-x"
    else:
        with FakeHfInference(keys={HUGGINGFACE_KEY}) as hf:
            app.state.modelyard.settings.hf_inference_url = f"{hf.url}/models"
            await add_provider(
                database, "hf", "http://127.0.0.1:9/v1", HUGGINGFACE_KEY, kind="huggingface"
            )
            target = {"provider": "huggingface", "endpoint": "direct"}
            spec = RouteSpec(
                name="hf-direct",
                targets=[{**target, "model": "HuggingFaceH4/zephyr-7b-beta"}],
            )
            async with database.sessions() as session:
                await route_records.create_route(session, actor=None, spec=spec)
            yield "hf-direct"


async def test_a_plain_answer(asgi_http: httpx.AsyncClient, user_token: str, model: str) -> None:
    response = await answer(
        asgi_http, user_token, {"model": model, "messages": ASK, "max_tokens": 50}
    )
    assert response.status_code == 200, response.text
    [choice] = response.json()["choices"]
    assert choice["message"]["refusal"] is None and choice["logprobs"] is None
    assert choice["finish_reason"] == "stop" and choice["message"]["content"]


@pytest.mark.parametrize("model", ["gemini", "anthropic"], indirect=True)
async def test_a_tool_call_answer(
    asgi_http: httpx.AsyncClient, user_token: str, model: str
) -> None:
    body = {"model": model, "messages": ASK, "max_tokens": 50, "tools": [WEATHER_TOOL]}
    response = await answer(asgi_http, user_token, body)
    assert response.status_code == 200, response.text
    [choice] = response.json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("model", ["gemini", "anthropic"], indirect=True)
async def test_a_streamed_tool_call(
    asgi_http: httpx.AsyncClient, user_token: str, model: str
) -> None:
    body = {"model": model, "messages": ASK, "max_tokens": 50, "tools": [WEATHER_TOOL]}
    response, chunks = await stream_chunks(asgi_http, user_token, body)
    assert response.status_code == 200
    calls = [
        call
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or []
    ]
    assert calls and calls[0]["function"]["name"] == "get_weather"
    assert choices_by_index(chunks)[0]["finish_reason"] == "tool_calls"


async def test_two_choices(asgi_http: httpx.AsyncClient, user_token: str, model: str) -> None:
    response = await answer(
        asgi_http, user_token, {"model": model, "messages": ASK, "max_tokens": 50, "n": 2}
    )
    assert response.status_code == 200, response.text
    assert [choice["index"] for choice in response.json()["choices"]] == [0, 1]


@pytest.mark.parametrize("include_usage", [True, False])
async def test_a_streamed_answer(
    asgi_http: httpx.AsyncClient, user_token: str, model: str, include_usage: bool
) -> None:
    body = {
        "model": model,
        "messages": ASK,
        "max_tokens": 50,
        "stream_options": {"include_usage": include_usage},
    }
    response, chunks = await stream_chunks(asgi_http, user_token, body)
    assert response.status_code == 200
    [choice] = choices_by_index(chunks).values()
    assert choice["role"] == "assistant" and choice["finish_reason"] is not None
    usage = [chunk for chunk in chunks if chunk.get("usage")]
    if include_usage:
        assert usage == [chunks[-1]] and chunks[-1]["choices"] == []
    else:
        assert usage == []
