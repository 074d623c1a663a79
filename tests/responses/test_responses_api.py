"""``POST /v1/responses`` with the official `openai` SDK as the client, translated to chat
for a fake OpenAI upstream; every answer and event checked against OpenAI's spec."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.helpers import bearer
from tests.openai_spec import assert_valid
from tests.responses.sse import stream_events
from tests.responses.tooling_openai import ToolingOpenAI
from tests.responses.weather import WEATHER

MODEL = "openai_compatible/gpt-4o-mini"


async def create(http: httpx.AsyncClient, token: str, **body: Any) -> dict[str, Any]:
    """A raw JSON answer, checked to be a valid ``Response``."""
    response = await http.post("/v1/responses", headers=bearer(token), json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert_valid("Response", answer)
    return answer


async def test_string_input(
    sdk: openai.AsyncOpenAI, upstream: ToolingOpenAI, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    raw = await sdk.responses.with_raw_response.create(model=MODEL, input="hello there")
    response = raw.parse()
    assert_valid("Response", raw.http_response.json())
    assert response.output_text == "Echo: hello there"
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.model == "gpt-4o-mini"
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (2, 3)
    assert response.usage.total_tokens == 5
    assert raw.headers["x-modelyard-provider"] == "openai_compatible"
    sent = upstream.last_request.json()
    assert sent["messages"] == [{"role": "user", "content": "hello there"}]
    assert sent["stream"] is False and "store" not in sent


async def test_instructions_and_settings_reach_the_upstream(
    sdk: openai.AsyncOpenAI, upstream: ToolingOpenAI
) -> None:
    response = await sdk.responses.create(
        model=MODEL,
        instructions="Be brief.",
        input="hi",
        temperature=0.5,
        top_p=0.9,
        max_output_tokens=50,
        user="user-42",
        metadata={"team": "blue"},
        reasoning={"effort": "low"},
        safety_identifier="hashed-user",
    )
    sent = upstream.last_request.json()
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert (sent["temperature"], sent["top_p"], sent["user"]) == (0.5, 0.9, "user-42")
    assert sent["max_completion_tokens"] == 50 and sent["reasoning_effort"] == "low"
    assert sent["safety_identifier"] == "hashed-user"
    assert "metadata" not in sent and "max_output_tokens" not in sent
    assert response.instructions == "Be brief." and response.metadata == {"team": "blue"}
    assert (response.temperature, response.top_p, response.max_output_tokens) == (0.5, 0.9, 50)


async def test_message_items_and_parts(sdk: openai.AsyncOpenAI, upstream: ToolingOpenAI) -> None:
    await sdk.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Bonjour", "annotations": []}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/cat.png",
                        "detail": "low",
                    },
                ],
            },
        ],
    )
    assert upstream.last_request.json()["messages"] == [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.png", "detail": "low"},
                },
            ],
        },
    ]


async def test_stream_with_the_sdk(sdk: openai.AsyncOpenAI, upstream: ToolingOpenAI) -> None:
    stream = await sdk.responses.create(
        model=MODEL, input="one two three four five six", stream=True
    )
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) >= 3 and "".join(deltas) == "Echo: one two three four five six"
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Echo: one two three four five six"
    assert final.response.usage is not None and final.response.usage.output_tokens == 7
    sent = upstream.last_request.json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_stream_events_follow_the_spec(asgi_http: httpx.AsyncClient, user_token: str) -> None:
    events = await stream_events(asgi_http, user_token, model=MODEL, input="a b c d e f g")
    created, final = events[0], events[-1]
    assert created["response"]["status"] == "in_progress" and created["response"]["output"] == []
    assert final["type"] == "response.completed"
    assert_valid("Response", final["response"])
    assert final["response"]["status"] == "completed"
    assert final["response"]["id"] == created["response"]["id"]
    item = final["response"]["output"][0]
    assert item["content"][0]["text"] == "Echo: a b c d e f g"
    ids = {event["item_id"] for event in events if "item_id" in event}
    assert ids == {item["id"]}


async def test_streamed_function_call(asgi_http: httpx.AsyncClient, user_token: str) -> None:
    events = await stream_events(
        asgi_http, user_token, model=MODEL, input="Weather in Paris?", tools=[WEATHER]
    )
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[-3]
    assert (done["name"], done["arguments"], done["output_index"]) == (
        "get_weather",
        '{"city": "Paris"}',
        1,
    )
    message, call = events[-1]["response"]["output"]
    assert message["content"][0]["text"] == "Checking."
    assert call["type"] == "function_call" and call["call_id"] == "call_fake1"
    assert call["status"] == "completed"
    assert events[-1]["response"]["usage"]["total_tokens"] == 16


async def test_function_tool_round_trip_with_previous_response_id(
    sdk: openai.AsyncOpenAI, upstream: ToolingOpenAI
) -> None:
    first = await sdk.responses.create(
        model=MODEL, input="Weather in Paris?", tools=[WEATHER], tool_choice="required"
    )
    sent = upstream.last_request.json()
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER["parameters"],
                "strict": True,
            },
        }
    ]
    assert sent["tool_choice"] == "required"
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == '{"city": "Paris"}' and first.output_text == ""

    second = await sdk.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21C"}],
        tools=[WEATHER],
    )
    assert second.output_text == "The tool said: Sunny, 21C"
    assert second.previous_response_id == first.id
    assert upstream.last_request.json()["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_fake1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "Sunny, 21C", "tool_call_id": "call_fake1"},
    ]


async def test_function_tool_round_trip_inline(
    sdk: openai.AsyncOpenAI, upstream: ToolingOpenAI
) -> None:
    question = {"role": "user", "content": "Weather in Paris?"}
    first = await sdk.responses.create(model=MODEL, input=[question], tools=[WEATHER], store=False)
    items: list[Any] = [question, *(item.model_dump(exclude_none=True) for item in first.output)]
    items.append({"type": "function_call_output", "call_id": "call_fake1", "output": "Rain"})
    second = await sdk.responses.create(model=MODEL, input=items, tools=[WEATHER], store=False)
    assert second.output_text == "The tool said: Rain"
    messages = upstream.last_request.json()["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == "call_fake1"


@pytest.mark.parametrize(
    ("text_format", "expected"),
    [
        (
            {
                "type": "json_schema",
                "name": "weather",
                "schema": {"type": "object", "properties": {"c": {"type": "number"}}},
                "strict": True,
            },
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "weather",
                    "schema": {"type": "object", "properties": {"c": {"type": "number"}}},
                    "strict": True,
                },
            },
        ),
        ({"type": "json_object"}, {"type": "json_object"}),
        ({"type": "text"}, None),
    ],
)
async def test_text_format_becomes_response_format(
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ToolingOpenAI,
    text_format: dict[str, Any],
    expected: dict[str, Any] | None,
) -> None:
    answer = await create(
        asgi_http, user_token, model=MODEL, input="JSON please", text={"format": text_format}
    )
    assert upstream.last_request.json().get("response_format") == expected
    assert answer["text"]["format"] == text_format


async def test_max_output_tokens_makes_an_incomplete_response(
    sdk: openai.AsyncOpenAI, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    answer = await create(
        asgi_http, user_token, model=MODEL, input="one two three four", max_output_tokens=2
    )
    assert answer["status"] == "incomplete" and answer["completed_at"] is None
    assert answer["incomplete_details"] == {"reason": "max_output_tokens"}
    assert answer["output"][0]["status"] == "incomplete"
    response = await sdk.responses.create(model=MODEL, input="one two three", max_output_tokens=2)
    assert response.output_text == "Echo: one"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools.0.type", "'web_search'"),
        (
            {"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]},
            "tools.0.type",
            "'file_search'",
        ),
        ({"background": True}, "background", "'background'"),
        ({"conversation": "conv_1"}, "conversation", "'conversation'"),
        ({"frobnicate": 1}, "frobnicate", "Unknown parameter"),
        ({"include": ["message.output_text.logprobs"]}, "include", "log probabilities"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input.0.content.0.type",
            "'input_file'",
        ),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input.0.type", "'item_reference'"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input.0.role", "role"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice", "tool_choice"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type", "json_schema"),
        ({"truncation": "auto"}, "truncation", "truncation"),
        ({"input": []}, "input", "input is required"),
    ],
)
async def test_what_cannot_be_translated_is_a_clear_400(
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ToolingOpenAI,
    body: dict[str, Any],
    param: str,
    words: str,
) -> None:
    response = await asgi_http.post(
        "/v1/responses", headers=bearer(user_token), json={"model": MODEL, "input": "hi", **body}
    )
    assert response.status_code == 400, response.text
    error = response.json()
    assert_valid("ErrorResponse", error)
    assert error["error"]["param"] == param and words in error["error"]["message"]
    assert upstream.requests == []


async def test_sdk_raises_bad_request_for_a_builtin_tool(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="web_search"):
        await sdk.responses.create(model=MODEL, input="hi", tools=[{"type": "web_search"}])


async def test_what_another_providers_history_carries_is_accepted(
    asgi_http: httpx.AsyncClient, user_token: str, upstream: ToolingOpenAI
) -> None:
    """Codex-style clients ask for encrypted reasoning and send reasoning items back: the
    gateway produces none, so the include is vacuous and the items are dropped."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "ENC"}
    await create(
        asgi_http,
        user_token,
        model=MODEL,
        input=[{"role": "user", "content": "Hi"}, reasoning, {"role": "user", "content": "Again"}],
        include=["reasoning.encrypted_content"],
        tool_choice="auto",
        store=False,
    )
    sent = upstream.last_request.json()
    assert sent["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "Again"},
    ]
    assert "tool_choice" not in sent and "include" not in sent


async def test_the_sdks_stream_helper_rebuilds_the_response(sdk: openai.AsyncOpenAI) -> None:
    """``responses.stream`` accumulates the events itself and checks their order."""
    async with sdk.responses.stream(model=MODEL, input="Weather?", tools=[WEATHER]) as stream:
        texts = [
            event.delta async for event in stream if event.type == "response.output_text.delta"
        ]
        final = await stream.get_final_response()
    assert texts == ["Checking."] and final.output_text == "Checking."
    message, call = final.output
    assert message.type == "message" and call.type == "function_call"
    assert (call.name, call.arguments) == ("get_weather", '{"city": "Paris"}')
    assert final.status == "completed" and final.usage is not None
