"""The Messages API decided per target: an Anthropic upstream gets the client's request as
it was (thinking, documents, betas, ``top_k``…) and its answer comes back as it was; an
OpenAI upstream gets the chat form (``thinking`` as ``reasoning_effort``) or a 400 naming
what has no equivalent. ``count_tokens`` exact from Anthropic, estimated elsewhere. The
official `anthropic` SDK is the client, in front of fake upstreams."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.usage.recorder import UsageRecorder
from tests.fakes.anthropic_chat import COUNT_OVERHEAD, FAKE_SIGNATURE, ChatAnthropic
from tests.fakes.fixtures import ANTHROPIC_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.anthropic_clients import anthropic_error, sse_events
from tests.gateway.anthropic_clients import asgi_http2 as asgi_http2
from tests.gateway.anthropic_clients import claude as claude
from tests.gateway.conftest import add_provider
from tests.helpers import bearer, make_token, make_user
from tests.openai_spec import assert_valid
from tests.usage.conftest import usage_rows

CLAUDE = "anthropic/claude-x"
OPENAI_MODEL = "gpt-4o-mini"
THINKING: Any = {"type": "enabled", "budget_tokens": 2048}
PDF = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}
pytestmark = pytest.mark.usefixtures("openai_provider", "anthropic_provider")


@pytest.fixture
def fake_claude() -> Iterator[ChatAnthropic]:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.fixture
async def anthropic_provider(database: Database, fake_claude: ChatAnthropic) -> int:
    return await add_provider(database, "claude", fake_claude.url, ANTHROPIC_KEY, kind="anthropic")


def user(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]


def thinking_history() -> list[MessageParam]:
    """A conversation whose assistant turn kept its (signed) thinking block."""
    return [
        {"role": "user", "content": "first question"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Let me think.", "signature": FAKE_SIGNATURE},
                {"type": "redacted_thinking", "data": "c2VjcmV0"},
                {"type": "text", "text": "First answer."},
            ],
        },
        {"role": "user", "content": "second question"},
    ]


async def test_thinking_reaches_anthropic_unchanged_and_comes_back(
    claude: anthropic.AsyncAnthropic, fake_claude: ChatAnthropic
) -> None:
    system: Any = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    raw = await claude.messages.with_raw_response.create(
        model=CLAUDE,
        max_tokens=4096,
        system=system,
        thinking=THINKING,
        messages=user("why is the sky blue"),
        metadata={"user_id": "user-42"},
        extra_body={"top_k": 5, "service_tier": "standard_only"},
    )
    message = await raw.parse()
    sent = fake_claude.last_body
    assert sent == {
        "model": "claude-x",
        "max_tokens": 4096,
        "system": system,
        "thinking": THINKING,
        "messages": user("why is the sky blue"),
        "metadata": {"user_id": "user-42"},
        "top_k": 5,
        "service_tier": "standard_only",
    }
    thought, text = message.content
    assert thought.type == "thinking" and thought.signature == FAKE_SIGNATURE
    assert thought.thinking == "Thinking about: why is the sky blue"
    assert text.type == "text" and text.text == "Echo: why is the sky blue"
    assert message.id == "msg_01FakeAnthropic" and message.stop_reason == "end_turn"
    assert raw.headers["x-modelyard-provider"] == "anthropic"


async def test_thinking_streams_with_its_signature(
    claude: anthropic.AsyncAnthropic,
    fake_claude: ChatAnthropic,
    asgi_http: httpx.AsyncClient,
    user_token: str,
) -> None:
    async with claude.messages.stream(
        model=CLAUDE, max_tokens=4096, thinking=THINKING, messages=user("one two three")
    ) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert fake_claude.last_body["thinking"] == THINKING
    assert fake_claude.last_body["stream"] is True
    assert "".join(texts) == "Echo: one two three"
    thought = final.content[0]
    assert thought.type == "thinking" and thought.signature == FAKE_SIGNATURE
    assert thought.thinking == "Thinking about: one two three"
    assert final.usage.output_tokens > 0

    response = await asgi_http.post(
        "/v1/messages",
        headers={"x-api-key": user_token, "anthropic-version": "2023-06-01"},
        json={
            "model": CLAUDE,
            "max_tokens": 4096,
            "stream": True,
            "thinking": THINKING,
            "messages": user("one two three"),
        },
    )
    events = sse_events(response.text)
    deltas = [data["delta"]["type"] for name, data in events if name == "content_block_delta"]
    assert "thinking_delta" in deltas and "text_delta" in deltas
    assert deltas[deltas.index("signature_delta") - 1] == "thinking_delta"
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("ping") == 1  # relayed, not doubled


async def test_history_with_thinking_blocks_passes_through(
    claude: anthropic.AsyncAnthropic, fake_claude: ChatAnthropic
) -> None:
    history = thinking_history()
    await claude.messages.create(model=CLAUDE, max_tokens=4096, thinking=THINKING, messages=history)
    assert fake_claude.last_body["messages"] == history


async def test_document_blocks_and_betas_reach_anthropic(
    claude: anthropic.AsyncAnthropic, fake_claude: ChatAnthropic
) -> None:
    content: Any = [
        {
            "type": "document",
            "source": PDF,
            "title": "Report",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "text", "text": "summarise it"},
    ]
    edits = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    message = await claude.messages.create(
        model=CLAUDE,
        max_tokens=100,
        messages=[{"role": "user", "content": content}],
        extra_headers={"anthropic-beta": "pdfs-2024-09-25,context-management-2025-06-27"},
        extra_body={"context_management": edits},
    )
    assert message.content[0].type == "text" and message.content[0].text == "Echo: summarise it"
    received = fake_claude.requests[-1]
    assert received.header("anthropic-beta") == "pdfs-2024-09-25,context-management-2025-06-27"
    assert received.json()["messages"][0]["content"] == content
    assert received.json()["context_management"] == edits


async def test_thinking_to_an_openai_model_is_reasoning_effort(
    claude: anthropic.AsyncAnthropic, upstream: ChatOpenAI, fake_claude: ChatAnthropic
) -> None:
    message = await claude.messages.create(
        model=OPENAI_MODEL, max_tokens=4096, thinking=THINKING, messages=thinking_history()
    )
    assert message.content[0].type == "text"
    sent = upstream.last_request.json()
    assert sent["reasoning_effort"] == "medium"  # 2048 > low's 1024
    assert "thinking" not in sent and "x_anthropic_message" not in str(sent)
    # The thinking blocks of the history are left out; the answer's text stays.
    assert sent["messages"][1] == {"role": "assistant", "content": "First answer."}

    async with claude.messages.stream(
        model=OPENAI_MODEL,
        max_tokens=20000,
        thinking={"type": "enabled", "budget_tokens": 10000},
        messages=user("hi"),
    ) as stream:
        assert "".join([text async for text in stream.text_stream]).startswith("Echo:")
    assert upstream.last_request.json()["reasoning_effort"] == "high"
    assert fake_claude.requests == []


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_k": 5}, "top_k"),
        ({"context_management": {"edits": []}}, "context_management"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": PDF}]}]},
            "messages.0.content.0",
        ),
    ],
)
async def test_what_an_openai_model_cannot_take_is_refused_in_anthropic_shape(
    claude: anthropic.AsyncAnthropic, upstream: ChatOpenAI, extra: dict[str, Any], param: str
) -> None:
    body = {"model": OPENAI_MODEL, "max_tokens": 5, "messages": user("x"), **extra}
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.post("/v1/messages", cast_to=anthropic.types.Message, body=body)
    assert anthropic_error(refused.value, "invalid_request_error")
    assert repr(param) in refused.value.message and "openai" in refused.value.message
    assert upstream.requests == []


async def test_count_tokens_exact_from_anthropic(
    claude: anthropic.AsyncAnthropic, fake_claude: ChatAnthropic
) -> None:
    raw = await claude.messages.with_raw_response.count_tokens(
        model=CLAUDE,
        system="Be brief.",
        thinking=THINKING,
        messages=user("how many tokens is this"),
        extra_headers={"anthropic-beta": "token-counting-2024-11-01"},
    )
    counted = await raw.parse()
    assert counted.input_tokens == 7 + COUNT_OVERHEAD
    assert "x-modelyard-estimated" not in raw.headers
    assert raw.headers["x-modelyard-provider"] == "anthropic"
    received = fake_claude.requests[-1]
    assert received.path == "/v1/messages/count_tokens"
    assert received.header("anthropic-beta") == "token-counting-2024-11-01"
    assert received.json() == {
        "model": "claude-x",
        "system": "Be brief.",
        "thinking": THINKING,
        "messages": user("how many tokens is this"),
    }


async def test_count_tokens_estimated_for_other_providers(
    claude: anthropic.AsyncAnthropic, upstream: ChatOpenAI, fake_claude: ChatAnthropic
) -> None:
    raw = await claude.messages.with_raw_response.count_tokens(
        model=OPENAI_MODEL, messages=user("how many tokens is this")
    )
    counted = await raw.parse()
    assert raw.headers["x-modelyard-estimated"] == "true"
    assert 5 <= counted.input_tokens < 5 + COUNT_OVERHEAD
    tool: Any = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}
    with_tools = await claude.messages.count_tokens(
        model=OPENAI_MODEL, messages=user("how many tokens is this"), tools=[tool]
    )
    assert with_tools.input_tokens > counted.input_tokens  # the definitions count too
    assert upstream.requests == [] and fake_claude.requests == []


async def test_count_tokens_errors_are_anthropic_shaped(
    claude: anthropic.AsyncAnthropic, fake_claude: ChatAnthropic
) -> None:
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await claude.messages.count_tokens(model="no-such-model", messages=user("x"))
    assert anthropic_error(unknown.value, "not_found_error")
    assert "no-such-model" in unknown.value.message
    with pytest.raises(anthropic.AuthenticationError) as unauthenticated:
        await claude.with_options(api_key="myd_not-a-real-token").messages.count_tokens(
            model=CLAUDE, messages=user("x")
        )
    assert anthropic_error(unauthenticated.value, "authentication_error")
    with pytest.raises(anthropic.BadRequestError) as invalid:  # a 422 at FastAPI
        await claude.post(
            "/v1/messages/count_tokens",
            cast_to=anthropic.types.MessageTokensCount,
            body={"model": CLAUDE},
        )
    assert anthropic_error(invalid.value, "invalid_request_error")
    assert "messages" in invalid.value.message
    fake_claude.fail_with(429)
    with pytest.raises(anthropic.RateLimitError) as limited:
        await claude.messages.count_tokens(model=CLAUDE, messages=user("x"))
    assert anthropic_error(limited.value, "rate_limit_error")


async def test_cached_answers_keep_native_parts_apart(
    claude: anthropic.AsyncAnthropic,
    fake_claude: ChatAnthropic,
    asgi_http: httpx.AsyncClient,
    user_token: str,
) -> None:
    cached = claude.with_options(default_headers={"x-modelyard-cache": "true"})
    for _ in range(2):
        thought = await cached.messages.create(
            model=CLAUDE, max_tokens=4096, thinking=THINKING, messages=user("cache me")
        )
        assert [block.type for block in thought.content] == ["thinking", "text"]
    assert len(fake_claude.requests) == 1
    plain = await cached.messages.create(model=CLAUDE, max_tokens=4096, messages=user("cache me"))
    assert [block.type for block in plain.content] == ["text"]
    assert len(fake_claude.requests) == 2
    # The same conversation through the OpenAI API is not served a Messages answer.
    response = await asgi_http.post(
        "/v1/chat/completions",
        headers={"authorization": f"Bearer {user_token}", "x-modelyard-cache": "true"},
        json={"model": CLAUDE, "max_tokens": 4096, "messages": user("cache me")},
    )
    assert response.status_code == 200 and "x_anthropic" not in response.text
    assert_valid("CreateChatCompletionResponse", response.json())
    assert len(fake_claude.requests) == 3


async def test_anthropics_own_refusal_reaches_the_client(
    claude: anthropic.AsyncAnthropic, fake_claude: ChatAnthropic
) -> None:
    history: Any = thinking_history()
    del history[1]["content"][0]["signature"]
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(model=CLAUDE, max_tokens=4096, messages=history)
    assert anthropic_error(refused.value, "invalid_request_error")
    assert "signature: Field required" in refused.value.message
    assert len(fake_claude.requests) == 1


async def test_a_stream_to_an_openai_model_refuses_top_k(
    claude: anthropic.AsyncAnthropic, upstream: ChatOpenAI
) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        async with claude.messages.stream(
            model=OPENAI_MODEL, max_tokens=5, messages=user("x"), extra_body={"top_k": 3}
        ) as stream:
            await stream.get_final_message()
    assert anthropic_error(refused.value, "invalid_request_error")
    assert "'top_k'" in refused.value.message
    assert upstream.requests == []


async def test_usage_is_recorded_from_anthropics_own_counts(
    app: FastAPI, claude: anthropic.AsyncAnthropic, database: Database
) -> None:
    await claude.messages.create(
        model=CLAUDE, max_tokens=4096, thinking=THINKING, messages=user("a b c")
    )
    async with claude.messages.stream(
        model=CLAUDE, max_tokens=4096, thinking=THINKING, messages=user("a b c d")
    ) as stream:
        final = await stream.get_final_message()
    await claude.messages.count_tokens(model=CLAUDE, messages=user("a b c"))
    recorder: UsageRecorder = app.state.modelyard.usage
    await recorder.flush()
    rows = await usage_rows(database)
    assert [(r.endpoint, r.provider) for r in rows] == [("messages", "anthropic")] * 2
    assert (rows[1].input_tokens, rows[1].output_tokens) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )
    assert (rows[0].input_tokens, rows[0].output_tokens) == (3, 9)  # thinking words counted


async def test_count_tokens_fails_over_like_a_call(
    claude: anthropic.AsyncAnthropic, database: Database, fake_claude: ChatAnthropic
) -> None:
    with ChatAnthropic(keys={ANTHROPIC_KEY}, status=529) as busy:
        await add_provider(
            database, "busy", busy.url, ANTHROPIC_KEY, kind="anthropic", default=True
        )
        raw = await claude.messages.with_raw_response.count_tokens(
            model=CLAUDE, messages=user("one two")
        )
        assert [r.path for r in busy.requests] == ["/v1/messages/count_tokens"]
    assert (await raw.parse()).input_tokens == 2 + COUNT_OVERHEAD
    assert raw.headers["x-modelyard-attempts"] == "2"
    assert [r.path for r in fake_claude.requests] == ["/v1/messages/count_tokens"]


async def test_a_drop_route_leaves_native_parameters_out_for_other_targets(
    claude: anthropic.AsyncAnthropic,
    asgi_http: httpx.AsyncClient,
    database: Database,
    upstream: ChatOpenAI,
) -> None:
    staff = bearer(await make_token(database, await make_user(database, "s@x.org", staff=True)))
    route = {
        "name": "lenient",
        "targets": [{"provider": "openai", "model": OPENAI_MODEL}],
        "unsupported_params": "drop",
    }
    created = await asgi_http.post("/v2/admin/routes", json=route, headers=staff)
    assert created.status_code == 201, created.text
    raw = await claude.messages.with_raw_response.create(
        model="lenient",
        max_tokens=5,
        messages=user("x"),
        extra_body={"top_k": 5, "context_management": {"edits": []}},
    )
    assert raw.headers["x-modelyard-dropped-params"] == "context_management,top_k"
    assert (await raw.parse()).content[0].type == "text"
    assert not {"top_k", "context_management"} & set(upstream.last_request.json())
    # Content is never dropped: a document stays a 400.
    document: Any = [{"role": "user", "content": [{"type": "document", "source": PDF}]}]
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(model="lenient", max_tokens=5, messages=document)
    assert "'messages.0.content.0'" in refused.value.message


async def test_output_format_and_effort_to_an_openai_model(
    claude: anthropic.AsyncAnthropic, upstream: ChatOpenAI, fake_claude: ChatAnthropic
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    output = {"type": "json_schema", "schema": schema}
    await claude.messages.create(
        model=OPENAI_MODEL,
        max_tokens=50,
        messages=user("x"),
        extra_body={"output_config": {"format": output, "effort": "high"}},
    )
    sent = upstream.last_request.json()
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert sent["reasoning_effort"] == "high"
    await claude.messages.create(
        model=OPENAI_MODEL, max_tokens=50, messages=user("x"), extra_body={"output_format": output}
    )
    assert upstream.last_request.json()["response_format"]["json_schema"]["schema"] == schema
    # To Anthropic they go as they are.
    await claude.messages.create(
        model=CLAUDE, max_tokens=50, messages=user("x"), extra_body={"output_format": output}
    )
    assert fake_claude.last_body["output_format"] == output
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(
            model=OPENAI_MODEL,
            max_tokens=50,
            messages=user("x"),
            extra_body={"output_config": {"format": {"type": "xml"}}},
        )
    assert "'output_config'" in refused.value.message


async def test_anthropics_error_event_midway_is_relayed(
    claude: anthropic.AsyncAnthropic,
    fake_claude: ChatAnthropic,
    asgi_http: httpx.AsyncClient,
    user_token: str,
) -> None:
    fake_claude.error_after = 2
    with pytest.raises(anthropic.APIStatusError) as failed:
        async with claude.messages.stream(
            model=CLAUDE, max_tokens=4096, thinking=THINKING, messages=user("a b c d e f")
        ) as stream:
            await stream.get_final_message()
    assert failed.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    response = await asgi_http.post(
        "/v1/messages",
        headers={"x-api-key": user_token, "anthropic-version": "2023-06-01"},
        json={"model": CLAUDE, "max_tokens": 50, "stream": True, "messages": user("a b c d")},
    )
    names = [name for name, _ in sse_events(response.text)]
    assert names.count("error") == 1 and names[-1] == "error"
    assert "message_stop" not in names
