"""The Gemini adapter: the official `openai` SDK through the gateway to a fake Gemini API."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from tests.fakes.fixtures import GEMINI_KEY
from tests.fakes.gemini_chat import ChatGemini
from tests.gateway.conftest import add_provider

CANARY = "AIzaGeminiCanary0123456789abcdefghijk"
MODEL = "gemini-2.5-flash"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

pytestmark = pytest.mark.usefixtures("gemini_provider")


@pytest.fixture
def gemini() -> Iterator[ChatGemini]:
    with ChatGemini(keys={GEMINI_KEY}) as fake:
        yield fake


@pytest.fixture
async def gemini_provider(app: FastAPI, database: Database, gemini: ChatGemini) -> int:
    return await add_provider(database, "gemini", gemini.url, GEMINI_KEY, kind="google")


def sent(fake: ChatGemini) -> dict[str, Any]:
    body: dict[str, Any] = fake.last_request.json()
    return body


async def test_text_completion(sdk: openai.AsyncOpenAI, gemini: ChatGemini) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hello there"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 3)
    assert completion.usage.total_tokens == 5
    assert raw.headers["x-modelyard-provider"] == "google"
    request = gemini.last_request
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.header("x-goog-api-key") == GEMINI_KEY
    assert "key" not in request.params
    assert sent(gemini) == {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}


@pytest.mark.parametrize("include_usage", [True, False])
async def test_streaming(sdk: openai.AsyncOpenAI, gemini: ChatGemini, include_usage: bool) -> None:
    stream = await sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "one two three four five"}],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    chunks = [chunk async for chunk in stream]
    with_choices = [chunk for chunk in chunks if chunk.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    pieces = [chunk.choices[0].delta.content or "" for chunk in with_choices]
    assert "".join(pieces) == "Echo: one two three four five"
    assert len([piece for piece in pieces if piece]) == 3
    assert [c.choices[0].finish_reason for c in with_choices][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    if include_usage:
        assert chunks[-1].choices == [] and len(usage) == 1
        assert (usage[0].prompt_tokens, usage[0].completion_tokens) == (5, 6)
    else:
        assert usage == []
    assert gemini.last_request.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert gemini.last_request.params == {"alt": "sse"}


async def test_system_instruction_roles_and_merged_turns(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini
) -> None:
    await sdk.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
            {"role": "assistant", "content": "noted"},
            {"role": "developer", "content": "No emojis."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                ],
            },
        ],
    )
    body = sent(gemini)
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}, {"text": "No emojis."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "first"}, {"text": "second"}]},
        {"role": "model", "parts": [{"text": "noted"}]},
        {
            "role": "user",
            "parts": [
                {"text": "look"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
            ],
        },
    ]


async def test_generation_config(sdk: openai.AsyncOpenAI, gemini: ChatGemini) -> None:
    await sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "x"}],
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        stop=["END"],
        seed=7,
        n=1,
        response_format={"type": "json_object"},
    )
    assert sent(gemini)["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "seed": 7,
        "responseMimeType": "application/json",
    }
    await sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], max_completion_tokens=9
    )
    assert sent(gemini)["generationConfig"] == {"maxOutputTokens": 9}


async def test_tool_call_answer(sdk: openai.AsyncOpenAI, gemini: ChatGemini) -> None:
    gemini.parts = [
        {"text": "Let me check."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
    ]
    completion = await sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather in Paris and Rome?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    calls = choice.message.tool_calls or []
    assert [call.id for call in calls] == ["call_0", "call_1"]
    functions = [call.function for call in calls if call.type == "function"]
    assert [function.name for function in functions] == ["get_weather", "get_weather"]
    assert [json.loads(function.arguments) for function in functions] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    body = sent(gemini)
    assert body["tools"] == [{"functionDeclarations": [WEATHER_TOOL["function"]]}]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


@pytest.mark.parametrize(
    ("choice", "mode"), [("auto", "AUTO"), ("required", "ANY"), ("none", "NONE")]
)
async def test_tool_choice_modes(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini, choice: Any, mode: str
) -> None:
    await sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "x"}],
        tools=[WEATHER_TOOL],
        tool_choice=choice,
    )
    assert sent(gemini)["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


async def test_streamed_tool_call(sdk: openai.AsyncOpenAI, gemini: ChatGemini) -> None:
    gemini.parts = [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]
    stream = await sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = [chunk async for chunk in stream if chunk.choices]
    deltas = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    assert len(deltas) == 1 and deltas[0].index == 0 and deltas[0].id == "call_0"
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    assert json.loads(deltas[0].function.arguments or "") == {"city": "Oslo"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_function_response_round_trip(sdk: openai.AsyncOpenAI, gemini: ChatGemini) -> None:
    completion = await sdk.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21 C"},
            {"role": "user", "content": "thanks"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert completion.choices[0].message.content == "Echo: thanks"
    assert sent(gemini)["contents"] == [
        {"role": "user", "parts": [{"text": "weather in Paris?"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"content": "sunny, 21 C"},
                    }
                },
                {"text": "thanks"},
            ],
        },
    ]


async def test_tool_message_without_a_matching_call_is_refused(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "call_unknown", "content": "42"},
            ],
        )
    assert "call_unknown" in refused.value.message
    assert gemini.requests == []


async def test_finish_reason_length(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "a b c d e f"}], max_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Echo: a b"


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"])
async def test_finish_reason_content_filter(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini, reason: str
) -> None:
    gemini.finish_reason = reason
    completion = await sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}]
    )
    assert completion.choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize("stream", [False, True])
async def test_blocked_prompt(sdk: openai.AsyncOpenAI, gemini: ChatGemini, stream: bool) -> None:
    gemini.block_reason = "SAFETY"
    if not stream:
        completion = await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "something bad"}]
        )
        assert completion.choices[0].finish_reason == "content_filter"
        assert completion.choices[0].message.content == ""
        assert completion.usage is not None and completion.usage.prompt_tokens == 2
        return
    chunks = [
        chunk
        async for chunk in await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "something bad"}], stream=True
        )
    ]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ""
    assert chunks[-1].choices[0].finish_reason == "content_filter"


async def test_embeddings(sdk: openai.AsyncOpenAI, gemini: ChatGemini) -> None:
    embedded = await sdk.embeddings.create(
        model="google/gemini-embedding-001", input=["alpha", "beta gamma"], dimensions=4
    )
    assert [item.index for item in embedded.data] == [0, 1]
    assert embedded.data[1].embedding == [10.0, 0.5, 0.5, 0.5]
    assert embedded.usage.prompt_tokens == 0
    request = gemini.last_request
    assert request.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert request.json()["requests"][0] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "alpha"}]},
        "outputDimensionality": 4,
    }


async def test_embeddings_as_floats_and_base64(sdk: openai.AsyncOpenAI) -> None:
    floats = await sdk.embeddings.create(
        model="google/gemini-embedding-001", input="hello", encoding_format="float"
    )
    assert floats.data[0].embedding == [5.0, 0.5, 0.5]
    raw = await sdk.embeddings.with_raw_response.create(
        model="google/gemini-embedding-001", input="hello", encoding_format="base64"
    )
    encoded = raw.http_response.json()["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(encoded)) == (5.0, 0.5, 0.5)


async def test_token_id_embedding_input_is_refused(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.embeddings.create(model="google/gemini-embedding-001", input=[[1, 2, 3]])
    assert refused.value.body["param"] == "input"  # type: ignore[index]
    assert gemini.requests == []


async def test_a_bad_key_rotates_to_the_next_provider(
    sdk: openai.AsyncOpenAI, database: Database, gemini: ChatGemini
) -> None:
    await add_provider(database, "broken gemini", gemini.url, CANARY, kind="google", default=True)
    raw = await sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "rotate"}]
    )
    assert raw.parse().choices[0].message.content == "Echo: rotate"
    assert raw.headers["x-modelyard-attempts"] == "2"
    assert [r.header("x-goog-api-key") for r in gemini.requests[-2:]] == [CANARY, GEMINI_KEY]


async def test_a_bad_key_alone_is_reported_as_rejected(
    sdk: openai.AsyncOpenAI, database: Database, gemini: ChatGemini
) -> None:
    gemini.keys = {"AIzaSomeOtherKey0123456789abcdefghijk"}
    with pytest.raises(openai.InternalServerError) as failed:
        await sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 502
    assert failed.value.body["code"] == "upstream_unauthorized"  # type: ignore[index]


async def test_resource_exhausted_is_a_rate_limit(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini
) -> None:
    gemini.fail_with(429)
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert "Resource has been exhausted" in limited.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
    ],
)
async def test_unsupported_parameters_are_refused(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], **extra
        )
    assert refused.value.body["param"] == param  # type: ignore[index]
    assert gemini.requests == []


async def test_remote_image_urls_are_refused(sdk: openai.AsyncOpenAI, gemini: ChatGemini) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=MODEL,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
                    ],
                }
            ],
        )
    assert "data: URLs" in refused.value.message
    assert gemini.requests == []
