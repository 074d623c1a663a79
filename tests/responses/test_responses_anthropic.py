"""The Responses API in front of Anthropic: the same translation, another provider (the
gateway's Anthropic adapter speaks the Messages API to a fake Anthropic)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from modelyard.db.engine import Database
from tests.fakes.anthropic_chat import ChatAnthropic
from tests.fakes.fixtures import ANTHROPIC_KEY
from tests.gateway.conftest import add_provider
from tests.responses.sse import stream_events

MODEL = "claude-sonnet-4-5"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}


@pytest.fixture
def anthropic() -> Iterator[ChatAnthropic]:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.fixture(autouse=True)
async def anthropic_provider(database: Database, anthropic: ChatAnthropic) -> int:
    return await add_provider(database, "claude", anthropic.url, ANTHROPIC_KEY, kind="anthropic")


async def test_text_and_instructions(sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic) -> None:
    raw = await sdk.responses.with_raw_response.create(
        model=MODEL, instructions="Be brief.", input="hello there", max_output_tokens=40
    )
    response = raw.parse()
    assert raw.headers["x-modelyard-provider"] == "anthropic"
    assert response.output_text == "Echo: hello there" and response.status == "completed"
    sent = anthropic.last_request.json()
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 40
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]}
    ]


async def test_function_call_round_trip(sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic) -> None:
    first = await sdk.responses.create(
        model=MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(call.name, call.arguments) for call in calls] == [("get_weather", '{"city":"Paris"}')]
    second = await sdk.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "Echo: Sunny"
    sent = anthropic.last_request.json()["messages"]
    assert sent[-1]["content"][0]["type"] == "tool_result"
    assert sent[-1]["content"][0]["tool_use_id"] == calls[0].call_id


async def test_stream(asgi_http: httpx.AsyncClient, user_token: str) -> None:
    events = await stream_events(asgi_http, user_token, model=MODEL, input="one two three")
    assert events[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Echo: one two three"
    assert events[-1]["response"]["usage"]["output_tokens"] > 0
