"""The Anthropic adapter: the official `openai` SDK through the gateway to a fake Messages API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageFunctionToolCallParam,
)

from modelyard.db.engine import Database
from modelyard.gateway.adapters.anthropic import StreamTranslator
from modelyard.gateway.upstream_errors import UpstreamError
from tests.fakes.anthropic_chat import ChatAnthropic
from tests.fakes.fixtures import ANTHROPIC_KEY
from tests.gateway.conftest import add_provider

CANARY = "sk-ant-canary-0123456789abcdef"
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
pytestmark = pytest.mark.usefixtures("anthropic_provider")


@pytest.fixture
def anthropic() -> Iterator[ChatAnthropic]:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.fixture
async def anthropic_provider(database: Database, anthropic: ChatAnthropic) -> int:
    return await add_provider(database, "claude", anthropic.url, ANTHROPIC_KEY, kind="anthropic")


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def test_chat_completion(sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic) -> None:
    anthropic.cache_read_tokens = 5
    raw = await sdk.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "hello there"},
        ],
        temperature=0.5,
        top_p=0.9,
        user="user-42",
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.id == "msg_01FakeAnthropic" and completion.model == "claude-sonnet-4-5"
    assert completion.usage is not None
    # 7 words of system and user text, plus 5 cached tokens.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 3)
    assert completion.usage.total_tokens == 15
    assert raw.headers["x-modelyard-provider"] == "anthropic"
    sent = anthropic.last_request
    assert sent.path == "/v1/messages"
    assert sent.header("x-api-key") == ANTHROPIC_KEY
    assert sent.header("anthropic-version") == "2023-06-01"
    assert sent.header("authorization") is None
    assert sent.json() == {
        "model": "claude-sonnet-4-5",
        "system": "Be brief.\n\nAnswer in English.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "max_tokens": 4096,
        "temperature": 0.5,
        "top_p": 0.9,
        "metadata": {"user_id": "user-42"},
    }


async def test_consecutive_messages_of_one_role_are_merged(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    completion = await sdk.chat.completions.create(
        model="anthropic/claude-x",
        messages=[
            {"role": "user", "content": "first"},
            {"role": "system", "content": "Mid-conversation rule."},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "third"}]},
        ],
        max_completion_tokens=50,
    )
    assert completion.choices[0].message.content == "Echo: third"
    sent = anthropic.last_body
    assert sent["model"] == "claude-x" and sent["max_tokens"] == 50
    assert sent["system"] == "Mid-conversation rule."
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in sent["messages"][0]["content"]] == ["first", "second"]


async def test_stop_reasons(sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic) -> None:
    cut = await sdk.chat.completions.create(
        model="anthropic/claude-sonnet-4-5", messages=user("one two three four"), max_tokens=2
    )
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "Echo: one"
    assert anthropic.last_body["max_tokens"] == 2
    stopped = await sdk.chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=user("one two three four"),
        stop=["three", "zzz"],
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == "Echo: one two "
    assert anthropic.last_body["stop_sequences"] == ["three", "zzz"]
    await sdk.chat.completions.create(model="anthropic/claude-x", messages=user("x"), stop="END")
    assert anthropic.last_body["stop_sequences"] == ["END"]


@pytest.mark.parametrize("include_usage", [True, False])
async def test_streaming(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic, include_usage: bool
) -> None:
    stream = await sdk.chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=[{"role": "system", "content": "Sys."}, *user("one two three four five")],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    pieces, finishes, usage, roles = [], [], None, []
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk" and chunk.id == "msg_01FakeAnthropic"
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            roles.append(chunk.choices[0].delta.role)
            finishes.append(chunk.choices[0].finish_reason)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == "Echo: one two three four five"
    assert len([p for p in pieces if p]) == anthropic.stream_chunks
    assert roles[0] == "assistant"
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    if include_usage:
        assert usage is not None
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (6, 6, 12)
    else:
        assert usage is None
    sent = anthropic.last_body
    assert sent["stream"] is True and sent["system"] == "Sys."
    assert "stream_options" not in sent


async def test_tool_call_round_trip(sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic) -> None:
    question = user("What is the weather in Paris?")
    completion = await sdk.chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=question,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert (call.id, call.type, call.function.name) == ("toolu_fake_1", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = anthropic.last_body
    function = WEATHER_TOOL["function"]
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": function.get("description"),
            "input_schema": function.get("parameters"),
        }
    ]
    assert sent["tool_choice"] == {"type": "auto"}

    answered = await sdk.chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        tools=[WEATHER_TOOL],
        messages=[
            *question,
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"},
        ],
    )
    assert answered.choices[0].message.content == "Echo: 18 C and sunny"
    assert answered.choices[0].finish_reason == "stop"
    assistant, result = anthropic.last_body["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    assert result == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C and sunny"}],
    }


async def test_tool_results_are_merged_and_put_first(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    calls: list[ChatCompletionMessageFunctionToolCallParam] = [
        {
            "id": f"toolu_{n}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": a},
        }
        for n, a in ((1, '{"city": "Paris"}'), (2, ""))
    ]
    completion = await sdk.chat.completions.create(
        model="anthropic/claude-x",
        tools=[WEATHER_TOOL],
        messages=[
            *user("weather in two cities"),
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
            *user("and tomorrow?"),
            {
                "role": "tool",
                "tool_call_id": "toolu_2",
                "content": [{"type": "text", "text": "wet"}],
            },
        ],
    )
    assert completion.choices[0].message.content == "Echo: sunny wet and tomorrow?"
    turns = anthropic.last_body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][1]["input"] == {}
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "tool_result", "text"]
    assert turns[2]["content"][1]["content"] == [{"type": "text", "text": "wet"}]


@pytest.mark.parametrize(
    ("choice", "expected", "calls"),
    [
        ("required", {"type": "any"}, 1),
        ("none", {"type": "none"}, 0),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
            1,
        ),
    ],
)
async def test_tool_choice(
    sdk: openai.AsyncOpenAI,
    anthropic: ChatAnthropic,
    choice: Any,
    expected: dict[str, str],
    calls: int,
) -> None:
    completion = await sdk.chat.completions.create(
        model="anthropic/claude-x", messages=user("hi"), tools=[WEATHER_TOOL], tool_choice=choice
    )
    assert anthropic.last_body["tool_choice"] == expected
    assert len(completion.choices[0].message.tool_calls or []) == calls


@pytest.mark.parametrize("parallel", [None, False])
async def test_streamed_tool_calls(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic, parallel: bool | None
) -> None:
    extra = {} if parallel is None else {"parallel_tool_calls": parallel}
    stream = await sdk.chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=user("weather in two cities please"),
        tools=[WEATHER_TOOL],
        stream=True,
        extra_body=extra,
    )
    calls: dict[int, dict[str, str]] = {}
    text, finish, argument_deltas = "", None, 0
    async for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
        for call in delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            if call.id and call.function:
                entry["id"], entry["name"] = call.id, call.function.name or ""
            if call.function and call.function.arguments:
                entry["arguments"] += call.function.arguments
                argument_deltas += 1
    assert text == "Let me check." and finish == "tool_calls"
    cities = ["Paris", "Tokyo"] if parallel is None else ["Paris"]
    assert sorted(calls) == list(range(len(cities)))
    assert [calls[i]["id"] for i in sorted(calls)] == [f"toolu_fake_{n + 1}" for n in calls]
    assert {calls[i]["name"] for i in calls} == {"get_weather"}
    assert [json.loads(calls[i]["arguments"])["city"] for i in sorted(calls)] == cities
    assert argument_deltas > len(cities)
    if parallel is False:
        assert anthropic.last_body["tool_choice"] == {
            "type": "auto",
            "disable_parallel_tool_use": True,
        }


async def test_images(sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic) -> None:
    await sdk.chat.completions.create(
        model="anthropic/claude-x",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    assert anthropic.last_body["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    with pytest.raises(openai.BadRequestError) as bmp:
        await sdk.chat.completions.create(
            model="anthropic/claude-x",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0"}}
                    ],
                }
            ],
        )
    assert "image/bmp" in bmp.value.message


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"temperature": 1.5}, "temperature"),
        ({"seed": 7}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"logprobs": True}, "logprobs"),
    ],
)
async def test_parameters_anthropic_cannot_honour_are_refused(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="anthropic/claude-x", messages=user("x"), **params)
    assert refused.value.body["param"] == param  # type: ignore[index]
    assert param in refused.value.message
    assert anthropic.requests == []


async def test_temperature_message_names_the_range(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model="anthropic/claude-x", messages=user("x"), temperature=1.5
        )
    assert "0 to 1" in refused.value.message
    fine = await sdk.chat.completions.create(
        model="anthropic/claude-x", messages=user("x"), temperature=1, n=1
    )
    assert fine.choices[0].message.content == "Echo: x"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "hi"}],
        [{"role": "system", "content": "only a system prompt"}],
        [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
    ],
)
async def test_conversations_anthropic_cannot_take(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic, messages: list[Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="anthropic/claude-x", messages=messages)
    assert refused.value.body["param"] == "messages"  # type: ignore[index]
    assert anthropic.requests == []


async def test_rejected_key(
    sdk: openai.AsyncOpenAI, database: Database, anthropic: ChatAnthropic
) -> None:
    await add_provider(
        database, "bad claude", anthropic.url, CANARY, kind="anthropic", default=True
    )
    raw = await sdk.chat.completions.with_raw_response.create(
        model="anthropic/claude-sonnet-4-5", messages=user("rotate")
    )
    assert raw.parse().choices[0].message.content == "Echo: rotate"
    assert raw.headers["x-modelyard-attempts"] == "2"
    assert [r.header("x-api-key") for r in anthropic.requests] == [CANARY, ANTHROPIC_KEY]

    anthropic.keys = {"sk-ant-some-other-key-0123456789"}
    with pytest.raises(openai.InternalServerError) as failed:
        await sdk.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=user("x"))
    assert failed.value.status_code == 502
    assert "invalid x-api-key" in failed.value.message
    assert CANARY not in failed.value.message


async def test_overloaded_529_fails_over(
    sdk: openai.AsyncOpenAI, database: Database, anthropic: ChatAnthropic
) -> None:
    with ChatAnthropic(keys={ANTHROPIC_KEY}, status=529) as busy:
        await add_provider(
            database, "busy", busy.url, ANTHROPIC_KEY, kind="anthropic", default=True
        )
        raw = await sdk.chat.completions.with_raw_response.create(
            model="anthropic/claude-sonnet-4-5", messages=user("still here")
        )
        assert len(busy.requests) == 1
    assert raw.parse().choices[0].message.content == "Echo: still here"
    assert raw.headers["x-modelyard-attempts"] == "2"


async def test_overloaded_529_alone_is_a_bad_gateway(
    staff_sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    """(Staff see each attempt's outcome; users a short message.)"""
    anthropic.fail_with(529)
    with pytest.raises(openai.InternalServerError) as failed:
        await staff_sdk.chat.completions.create(
            model="anthropic/claude-sonnet-4-5", messages=user("x")
        )
    assert failed.value.status_code == 502
    assert "HTTP 529: Overloaded" in failed.value.message


async def test_upstream_client_errors_are_returned(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.chat.completions.create(model="anthropic/claude-nope", messages=user("x"))
    assert "claude-nope" in missing.value.message


async def test_a_stream_error_event_midway_raises(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    anthropic.error_after = 1
    stream = await sdk.chat.completions.create(
        model="anthropic/claude-sonnet-4-5", messages=user("a b c d e f"), stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as failed:
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received).startswith("Echo")
    assert len(received) == 2
    assert "Overloaded" in str(failed.value)


async def test_a_stream_ending_without_message_stop_is_an_error(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    anthropic.end_after = 2
    stream = await sdk.chat.completions.create(
        model="anthropic/claude-sonnet-4-5", messages=user("a b c d e f"), stream=True
    )
    with pytest.raises(openai.APIError) as failed:
        async for _chunk in stream:
            pass
    assert "ended before message_stop" in str(failed.value)


async def test_a_stream_error_before_any_chunk_fails_over(
    sdk: openai.AsyncOpenAI, database: Database
) -> None:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as broken:
        broken.error_first = True
        await add_provider(
            database, "broken", broken.url, ANTHROPIC_KEY, kind="anthropic", default=True
        )
        stream = await sdk.chat.completions.create(
            model="anthropic/claude-sonnet-4-5", messages=user("next one"), stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert len(broken.requests) == 1
    assert text == "Echo: next one"


def test_tool_input_outside_a_tool_block_is_a_protocol_error() -> None:
    translator = StreamTranslator("claude-x")
    start = {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}}
    assert translator.feed(start)[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert translator.feed({"type": "ping"}) == []
    assert not translator.finished
    with pytest.raises(UpstreamError) as failed:
        translator.feed(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "{"},
            }
        )
    assert failed.value.category == "protocol"


async def test_the_app_chat_route_continues_a_conversation_on_anthropic(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    app_sdk = sdk.with_options(base_url="http://testserver/v2/llm")
    first = await app_sdk.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=user("first")
    )
    conversation_id = int(first.headers["x-modelyard-conversation-id"])
    again = await app_sdk.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=user("second"),
        extra_body={"conversation_id": conversation_id},
    )
    assert again.choices[0].message.content == "Echo: second"
    assert "conversation_id" not in anthropic.last_request.json()
