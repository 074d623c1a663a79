"""The Anthropic Messages API (``POST /v1/messages``) with the official `anthropic` SDK as the
client, in front of a fake OpenAI upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, ToolParam
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI, reply_for
from tests.gateway.anthropic_clients import anthropic_error, sse_events
from tests.gateway.anthropic_clients import asgi_http2 as asgi_http2
from tests.gateway.anthropic_clients import claude as claude

MODEL = "gpt-4o-mini"
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
pytestmark = pytest.mark.usefixtures("openai_provider")


class ToolingOpenAI(ChatOpenAI):
    """The chat fake, plus: a call of the first tool when tools are given (JSON and SSE),
    and, like vLLM, the matched stop sequence in the choice's ``stop_reason``."""

    tool_arguments = ('{"city": ', '"Paris"}')

    async def chat_completions(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        body = await request.json()
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            if body.get("stream"):
                return StreamingResponse(
                    self._tool_stream(body, name), media_type="text/event-stream"
                )
            call = {
                "id": "call_fake1",
                "type": "function",
                "function": {"name": name, "arguments": "".join(self.tool_arguments)},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return JSONResponse(self._completion(body, message, "tool_calls"))
        reply = reply_for(body)
        stops = [stop for stop in body.get("stop") or [] if stop in reply]
        if stops and not body.get("stream"):
            cut = min(stops, key=reply.index)
            message = {"role": "assistant", "content": reply[: reply.index(cut)]}
            return JSONResponse(self._completion(body, message, "stop", stop_reason=cut))
        return await super().chat_completions(request)

    def _completion(
        self, body: dict[str, Any], message: dict[str, Any], finish: str, **extra: Any
    ) -> dict[str, Any]:
        choice = {"index": 0, "message": message, "finish_reason": finish, **extra}
        return {
            "id": "chatcmpl-tool",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [choice],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
        }

    async def _tool_stream(self, body: dict[str, Any], name: str) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            data = {"id": "chatcmpl-tool", "object": "chat.completion.chunk", "choices": [choice]}
            return f"data: {json.dumps({**data, 'model': body['model']})}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        yield chunk({"content": "Checking."})
        start = {"index": 0, "id": "call_fake1", "type": "function"}
        yield chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
        for piece in self.tool_arguments:
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}
            data = {"id": "chatcmpl-tool", "object": "chat.completion.chunk", "choices": []}
            yield f"data: {json.dumps({**data, 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"


@pytest.fixture
def upstream() -> Iterator[ToolingOpenAI]:
    with ToolingOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


def user(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]


async def raw_stream(
    asgi_http: httpx.AsyncClient, token: str, **body: Any
) -> list[tuple[str, dict[str, Any]]]:
    response = await asgi_http.post(
        "/v1/messages",
        headers={"x-api-key": token, "anthropic-version": "2023-06-01"},
        json={"model": MODEL, "max_tokens": 50, "stream": True, **body},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_events(response.text)


async def test_text_message(claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI) -> None:
    raw = await claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=100, messages=user("hello there")
    )
    message = await raw.parse()
    assert message.id.startswith("msg_") and message.role == "assistant"
    assert message.model == MODEL
    assert [(block.type, getattr(block, "text", None)) for block in message.content] == [
        ("text", "Echo: hello there")
    ]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 3)
    assert raw.headers["x-modelyard-provider"] == "openai"
    sent = upstream.last_request.json()
    assert sent["messages"] == [{"role": "user", "content": "hello there"}]
    assert sent["max_tokens"] == 100 and sent["stream"] is False


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be brief.", "Be brief."),
        ([{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}], None),
    ],
)
async def test_system_prompt_and_sampling_reach_the_upstream(
    claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI, system: Any, expected: str | None
) -> None:
    await claude.messages.create(
        model=MODEL,
        max_tokens=20,
        system=system,
        messages=user("hi"),
        metadata={"user_id": "user-42"},
        # This SDK no longer offers the sampling parameters; the API still takes them.
        extra_body={"temperature": 0.5, "top_p": 0.9},
    )
    sent = upstream.last_request.json()
    assert sent["messages"][0] == {"role": "system", "content": expected or "Be brief.\n\nBe kind."}
    assert sent["messages"][1] == {"role": "user", "content": "hi"}
    assert (sent["temperature"], sent["top_p"], sent["user"]) == (0.5, 0.9, "user-42")


async def test_stop_sequences(claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI) -> None:
    stopped = await claude.messages.create(
        model=MODEL, max_tokens=20, messages=user("one two three four"), stop_sequences=["three"]
    )
    assert upstream.last_request.json()["stop"] == ["three"]
    assert stopped.content[0].type == "text" and stopped.content[0].text == "Echo: one two "
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "three")

    # OpenAI itself does not say which sequence matched: a plain stop is an end_turn.
    natural = await claude.messages.create(
        model=MODEL, max_tokens=20, messages=user("one two"), stop_sequences=["zzz"]
    )
    assert (natural.stop_reason, natural.stop_sequence) == ("end_turn", None)


async def test_streaming_with_the_sdk(
    claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI
) -> None:
    async with claude.messages.stream(
        model=MODEL, max_tokens=50, messages=user("one two three four five six")
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "Echo: one two three four five six"
    assert len(pieces) >= 3
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 7)
    sent = upstream.last_request.json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_stream_event_order(asgi_http: httpx.AsyncClient, user_token: str) -> None:
    events = await raw_stream(asgi_http, user_token, messages=user("a b c d e f g"))
    names = [name for name, _ in events]
    deltas = len(names) - 6
    assert deltas >= 3
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert events[2][1]["content_block"] == {"type": "text", "text": ""}
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == "Echo: a b c d e f g"
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"]["output_tokens"] == 8


async def test_tools_reach_the_upstream_in_openai_shape(
    claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI
) -> None:
    message = await claude.messages.create(
        model=MODEL,
        max_tokens=50,
        messages=user("Weather in Paris?"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    sent = upstream.last_request.json()
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use"
    assert (block.id, block.name, block.input) == ("call_fake1", "get_weather", {"city": "Paris"})


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
async def test_tool_choice(
    claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI, choice: Any, expected: Any
) -> None:
    await claude.messages.create(
        model=MODEL,
        max_tokens=50,
        messages=user("x"),
        tools=[WEATHER_TOOL],
        tool_choice=choice,
    )
    sent = upstream.last_request.json()
    assert sent["tool_choice"] == expected and "parallel_tool_calls" not in sent


async def test_streamed_tool_call(
    claude: anthropic.AsyncAnthropic, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    async with claude.messages.stream(
        model=MODEL,
        max_tokens=50,
        messages=user("Weather in Paris?"),
        tools=[WEATHER_TOOL],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 9)
    text, call = final.content
    assert text.type == "text" and text.text == "Checking."
    assert call.type == "tool_use"
    assert (call.id, call.name, call.input) == ("call_fake1", "get_weather", {"city": "Paris"})

    events = await raw_stream(
        asgi_http, user_token, messages=user("Weather?"), tools=[WEATHER_TOOL]
    )
    blocks = [
        (name, data["index"], (data.get("delta") or data.get("content_block") or {}).get("type"))
        for name, data in events
        if name.startswith("content_block")
    ]
    assert blocks == [
        ("content_block_start", 0, "text"),
        ("content_block_delta", 0, "text_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "tool_use"),
        ("content_block_delta", 1, "input_json_delta"),
        ("content_block_delta", 1, "input_json_delta"),
        ("content_block_stop", 1, None),
    ]


async def test_tool_results_images_and_history(
    claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI
) -> None:
    await claude.messages.create(
        model=MODEL,
        max_tokens=50,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "Sunny, 21°C"}],
                    },
                    {"type": "text", "text": "And this picture?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/cat.png"},
                    },
                ],
            },
        ],
    )
    sent = upstream.last_request.json()["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert sent[2] == {"role": "tool", "content": "Sunny, 21°C", "tool_call_id": "toolu_1"}
    assert sent[3] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "And this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ],
    }
    assert len(sent) == 4


async def test_error_classes(claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI) -> None:
    bad_token = claude.with_options(api_key="myd_not-a-real-token")
    with pytest.raises(anthropic.AuthenticationError):
        await bad_token.messages.create(model=MODEL, max_tokens=5, messages=user("x"))
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await claude.messages.create(model="no-such-model", max_tokens=5, messages=user("x"))
    assert "no-such-model" in unknown.value.message

    with pytest.raises(anthropic.BadRequestError) as missing:
        await claude.post(
            "/v1/messages",
            cast_to=anthropic.types.Message,
            body={"model": MODEL, "messages": user("x")},
        )
    assert anthropic_error(missing.value, "invalid_request_error") and "max_tokens" in (
        missing.value.message
    )
    with pytest.raises(anthropic.BadRequestError) as top_k:
        await claude.messages.create(
            model=MODEL, max_tokens=5, messages=user("x"), extra_body={"top_k": 5}
        )
    assert anthropic_error(top_k.value, "invalid_request_error")
    assert "top_k" in top_k.value.message
    with pytest.raises(anthropic.BadRequestError) as unknown_field:
        await claude.messages.create(
            model=MODEL, max_tokens=5, messages=user("x"), extra_body={"frobnicate": 1}
        )
    assert "'frobnicate'" in unknown_field.value.message
    with pytest.raises(anthropic.BadRequestError) as hot:
        await claude.messages.create(
            model=MODEL, max_tokens=5, messages=user("x"), extra_body={"temperature": 1.5}
        )
    assert "temperature" in hot.value.message
    assert len(upstream.requests) == 0

    upstream.fail_with(429, headers={"retry-after": "7"})
    with pytest.raises(anthropic.RateLimitError) as limited:
        await claude.messages.create(model=MODEL, max_tokens=5, messages=user("x"))
    assert limited.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("context_management", {"edits": []}, "context_management"),
        ("messages", [{"role": "user", "content": []}], "messages.0.content"),
        ("tools", [{"type": "web_search_20250305", "name": "web_search"}], "tools.0.type"),
        (
            "messages",
            [{"role": "user", "content": [{"type": "document", "source": {}}]}],
            "messages.0.content.0",
        ),
        (
            "messages",
            [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ],
            "messages.0.content.0.source",
        ),
    ],
)
async def test_what_cannot_be_translated_is_refused(
    claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI, field: str, value: Any, param: str
) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": user("x"), field: value}
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.post("/v1/messages", cast_to=anthropic.types.Message, body=body)
    assert anthropic_error(refused.value, "invalid_request_error")
    assert param in refused.value.message
    assert upstream.requests == []


async def test_a_stream_cut_midway_ends_with_an_error_event(
    claude: anthropic.AsyncAnthropic,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ToolingOpenAI,
) -> None:
    upstream.drop_after = 2
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as failed:
        async with claude.messages.stream(
            model=MODEL, max_tokens=50, messages=user("a b c d e f g h")
        ) as stream:
            async for text in stream.text_stream:
                received.append(text)
    assert "".join(received).startswith("Echo:")
    assert "upstream stream failed" in str(failed.value)
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]

    events = await raw_stream(asgi_http, user_token, messages=user("a b c d e f g h"))
    names = [name for name, _ in events]
    assert names[-1] == "error" and "message_stop" not in names and "message_delta" not in names


async def test_failed_tool_results_and_disabled_thinking(
    claude: anthropic.AsyncAnthropic, upstream: ToolingOpenAI
) -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_9",
                    "content": "no such city",
                    "is_error": True,
                }
            ],
        },
    ]
    body = {"model": MODEL, "max_tokens": 5, "messages": history, "thinking": {"type": "disabled"}}
    await claude.post("/v1/messages", cast_to=anthropic.types.Message, body=body)
    sent = upstream.last_request.json()["messages"]
    assert sent[1].get("content") is None
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{}"}
    assert sent[2] == {"role": "tool", "content": "Error: no such city", "tool_call_id": "toolu_9"}
