"""OpenAI parameters on an Anthropic-backed model: ``response_format`` by a forced tool
(the openai SDK's ``.parse()`` and ``.stream()``), ``reasoning_effort`` as a thinking
budget, and what Anthropic cannot honour refused. The official `openai` SDK is the client,
in front of a fake Messages API; every answer is checked against OpenAI's spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from modelyard.db.engine import Database
from tests.fakes.anthropic_chat import ChatAnthropic
from tests.fakes.fixtures import ANTHROPIC_KEY
from tests.gateway.conftest import add_provider
from tests.helpers import bearer
from tests.openai_spec import assert_valid

CLAUDE = "anthropic/claude-x"
pytestmark = pytest.mark.usefixtures("anthropic_provider")


class Weather(BaseModel):
    city: str


@pytest.fixture
def fake_claude() -> Iterator[ChatAnthropic]:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.fixture
async def anthropic_provider(database: Database, fake_claude: ChatAnthropic) -> int:
    return await add_provider(database, "claude", fake_claude.url, ANTHROPIC_KEY, kind="anthropic")


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def sse_chunks(text: str) -> list[dict[str, Any]]:
    lines = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


async def test_parse_returns_the_parsed_object(
    sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic
) -> None:
    completion = await sdk.chat.completions.parse(
        model=CLAUDE, messages=user("Where is it sunny?"), response_format=Weather
    )
    choice = completion.choices[0]
    assert choice.message.parsed == Weather(city="Paris")
    assert choice.message.content == '{"city":"Paris"}' and choice.finish_reason == "stop"
    assert choice.message.tool_calls is None or choice.message.tool_calls == []
    sent = fake_claude.last_body
    (tool,) = sent["tools"]
    assert tool["name"] == "Weather" and tool["input_schema"]["properties"] == {
        "city": {"title": "City", "type": "string"}
    }
    assert sent["tool_choice"] == {"type": "tool", "name": "Weather"}


async def test_the_answer_is_a_spec_valid_completion(
    asgi_http: httpx.AsyncClient, user_token: str, fake_claude: ChatAnthropic
) -> None:
    schema = {"name": "weather", "schema": Weather.model_json_schema(), "strict": True}
    response = await asgi_http.post(
        "/v1/chat/completions",
        headers=bearer(user_token),
        json={
            "model": CLAUDE,
            "messages": user("Where is it sunny?"),
            "response_format": {"type": "json_schema", "json_schema": schema},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_valid("CreateChatCompletionResponse", body)
    assert json.loads(body["choices"][0]["message"]["content"]) == {"city": "Paris"}

    streamed = await asgi_http.post(
        "/v1/chat/completions",
        headers=bearer(user_token),
        json={
            "model": CLAUDE,
            "messages": user("Where is it sunny?"),
            "response_format": {"type": "json_schema", "json_schema": schema},
            "stream": True,
        },
    )
    chunks = sse_chunks(streamed.text)
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert json.loads("".join(d.get("content") or "" for d in deltas)) == {"city": "Paris"}
    assert not any(d.get("tool_calls") for d in deltas)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"


async def test_streamed_parse(sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic) -> None:
    async with sdk.chat.completions.stream(
        model=CLAUDE, messages=user("Where is it sunny?"), response_format=Weather
    ) as stream:
        pieces = [event.delta async for event in stream if event.type == "content.delta"]
        final = await stream.get_final_completion()
    assert len(pieces) > 1  # the tool's input deltas, as content deltas
    assert final.choices[0].message.parsed == Weather(city="Paris")
    assert final.choices[0].finish_reason == "stop"
    assert fake_claude.last_body["tool_choice"] == {"type": "tool", "name": "Weather"}
    assert fake_claude.last_body["stream"] is True


async def test_json_object(sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=CLAUDE, messages=user("Answer in JSON."), response_format={"type": "json_object"}
    )
    assert_valid("CreateChatCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris"}
    assert fake_claude.last_body["tools"][0]["input_schema"] == {"type": "object"}
    assert fake_claude.last_body["tool_choice"] == {"type": "tool", "name": "json_object"}


async def test_with_tools_the_answer_tool_joins_them_unforced(
    sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic
) -> None:
    lookup: Any = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    schema: Any = {"name": "Weather", "schema": Weather.model_json_schema()}
    response_format: Any = {"type": "json_schema", "json_schema": schema}
    chatty = await sdk.chat.completions.create(
        model=CLAUDE, messages=user("hello"), response_format=response_format, tools=[lookup]
    )
    assert chatty.choices[0].message.content == "Echo: hello"  # no tool called
    sent = fake_claude.last_body
    assert [tool["name"] for tool in sent["tools"]] == ["lookup", "Weather"]
    assert "tool_choice" not in sent and "'Weather'" in sent["system"]
    # The model calls a tool: the user's tool is a tool call; the answer tool is content.
    forced = await sdk.chat.completions.create(
        model=CLAUDE,
        messages=user("weather?"),
        response_format=response_format,
        tools=[lookup],
        tool_choice={"type": "function", "function": {"name": "Weather"}},
    )
    assert forced.choices[0].message.content == '{"city":"Paris"}'
    assert not forced.choices[0].message.tool_calls
    assert forced.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(("effort", "budget"), [("low", 1024), ("medium", 4096), ("high", 16384)])
async def test_reasoning_effort_is_a_thinking_budget(
    sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic, effort: Any, budget: int
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=CLAUDE, messages=user("think"), reasoning_effort=effort
    )
    assert_valid("CreateChatCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: think"  # the thinking left out
    sent = fake_claude.last_body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert sent["max_tokens"] == 4096 + budget


async def test_reasoning_effort_within_max_tokens_and_with_structured_output(
    sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic
) -> None:
    await sdk.chat.completions.create(
        model=CLAUDE, messages=user("x"), reasoning_effort="high", max_completion_tokens=3000
    )
    assert fake_claude.last_body["thinking"] == {"type": "enabled", "budget_tokens": 2999}
    assert fake_claude.last_body["max_tokens"] == 3000
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=CLAUDE, messages=user("x"), reasoning_effort="low", max_tokens=500
        )
    assert refused.value.body["param"] == "max_tokens"  # type: ignore[index]

    # Anthropic refuses a forced tool with thinking: the answer tool is asked for instead.
    parsed = await sdk.chat.completions.parse(
        model=CLAUDE,
        messages=user("What is the weather?"),
        response_format=Weather,
        reasoning_effort="low",
    )
    assert parsed.choices[0].message.parsed == Weather(city="Paris")
    assert "tool_choice" not in fake_claude.last_body


async def test_reasoning_effort_in_a_tool_loop_goes_without_thinking(
    sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic
) -> None:
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages: Any = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
    ]
    tool: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    answer = await sdk.chat.completions.create(
        model=CLAUDE, messages=messages, tools=[tool], reasoning_effort="low"
    )
    assert answer.choices[0].message.content == "Echo: sunny"
    assert "thinking" not in fake_claude.last_body
    # The next question is a new turn: thinking again.
    messages += [{"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "ok"}]
    await sdk.chat.completions.create(
        model=CLAUDE, messages=messages, tools=[tool], reasoning_effort="low"
    )
    assert fake_claude.last_body["thinking"]["type"] == "enabled"


@pytest.mark.parametrize("effort", ["extreme", ["low"], 3])
async def test_unknown_reasoning_efforts_are_refused(
    sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic, effort: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=CLAUDE, messages=user("x"), extra_body={"reasoning_effort": effort}
        )
    assert refused.value.body["param"] == "reasoning_effort"  # type: ignore[index]
    assert fake_claude.requests == []


async def test_user_is_metadata(sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic) -> None:
    await sdk.chat.completions.create(model=CLAUDE, messages=user("x"), user="user-7")
    assert fake_claude.last_body["metadata"] == {"user_id": "user-7"}


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}},
        {"type": "json_schema"},
        {"type": "yaml"},
    ],
)
async def test_response_formats_anthropic_cannot_answer(
    sdk: openai.AsyncOpenAI, fake_claude: ChatAnthropic, response_format: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=CLAUDE, messages=user("x"), response_format=response_format
        )
    assert refused.value.body["param"] == "response_format"  # type: ignore[index]
    assert_valid("ErrorResponse", {"error": refused.value.body})
    assert fake_claude.requests == []
