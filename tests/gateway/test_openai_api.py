"""The OpenAI-compatible API with the official `openai` SDK as the client."""

from __future__ import annotations

import logging

import openai
import pytest

from modelyard.db.engine import Database
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.openai_spec import assert_valid

CANARY = "sk-gateway-canary-0123456789abcdef"
pytestmark = pytest.mark.usefixtures("openai_provider")


async def test_chat_completion(sdk: openai.AsyncOpenAI, upstream: ChatOpenAI) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}], temperature=0
    )
    completion = raw.parse()
    assert_valid("CreateChatCompletionResponse", raw.http_response.json())
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert raw.headers["x-request-id"]
    assert raw.headers["x-modelyard-provider"] == "openai"
    assert raw.headers["x-modelyard-attempts"] == "1"
    sent = upstream.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.header("authorization") == f"Bearer {OPENAI_KEY}"
    assert sent.json()["temperature"] == 0 and sent.json()["model"] == "gpt-4o-mini"


@pytest.mark.parametrize("include_usage", [True, False])
async def test_streaming(sdk: openai.AsyncOpenAI, include_usage: bool) -> None:
    stream = await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    pieces, usage = [], None
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == "Echo: one two three four five six"
    assert len([p for p in pieces if p]) >= 3
    assert (usage is not None) is include_usage


async def test_provider_prefixed_model_name(sdk: openai.AsyncOpenAI, upstream: ChatOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="openai/gpt-4.1", messages=[{"role": "user", "content": "x"}]
    )
    assert completion.choices[0].message.content == "Echo: x"
    assert upstream.last_request.json()["model"] == "gpt-4.1"


async def test_error_classes(sdk: openai.AsyncOpenAI, upstream: ChatOpenAI) -> None:
    bad_token = sdk.with_options(api_key="myd_not-a-real-token")
    with pytest.raises(openai.AuthenticationError):
        await bad_token.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.NotFoundError) as unknown:
        await sdk.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert "GET /v1/models" in unknown.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], temperature=5
        )
    assert bad.value.body["param"] == "temperature"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=[])

    upstream.fail_with(429, headers={"retry-after": "7"})
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.response.headers["x-request-id"]


async def test_upstream_404_for_a_model_it_lacks(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(
            model="openai/gpt-9-imaginary", messages=[{"role": "user", "content": "x"}]
        )


async def test_rejected_key_rotates_to_the_next_one(
    sdk: openai.AsyncOpenAI,
    database: Database,
    upstream: ChatOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_provider(database, "broken key", upstream.base_url, CANARY, default=True)
    with caplog.at_level(logging.INFO, logger="modelyard.gateway"):
        raw = await sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "rotate"}]
        )
    assert raw.parse().choices[0].message.content == "Echo: rotate"
    assert raw.headers["x-modelyard-attempts"] == "2"
    assert [r.header("authorization") for r in upstream.requests[-2:]] == [
        f"Bearer {CANARY}",
        f"Bearer {OPENAI_KEY}",
    ]
    assert "unauthorized - invalid key - trying next target" in caplog.text
    assert "Trying key 1/2 (provider 'broken key') for model gpt-4o-mini" in caplog.text
    assert "key 1/2 (provider 'broken key') unauthorized - invalid key" in caplog.text
    assert CANARY not in caplog.text


async def test_stream_fails_over_before_the_first_byte(
    sdk: openai.AsyncOpenAI, database: Database
) -> None:
    with ChatOpenAI(keys={OPENAI_KEY}, status=503) as down:
        await add_provider(database, "down", down.base_url, OPENAI_KEY, default=True)
        stream = await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "still here"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert len(down.requests) == 1
    assert text == "Echo: still here"


async def test_a_stream_cut_midway_ends_with_an_error_event(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI
) -> None:
    upstream.drop_after = 2
    stream = await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "a b c d e f g h"}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as failed:
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received).startswith("Echo:")
    assert "upstream stream failed" in str(failed.value)


async def test_every_target_failing_lists_what_was_tried(
    staff_sdk: openai.AsyncOpenAI, database: Database, upstream: ChatOpenAI
) -> None:
    """(For staff: users get one short message, see tests/api/test_upstream_detail.py.)"""
    await add_provider(database, "second", upstream.base_url, OPENAI_KEY)
    upstream.fail_with(500)
    with pytest.raises(openai.InternalServerError) as failed:
        await staff_sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert failed.value.status_code == 502
    assert "Every target failed (" in failed.value.message
    assert "provider 'fake openai': HTTP 500" in failed.value.message
    assert "provider 'second': HTTP 500" in failed.value.message
    assert OPENAI_KEY not in failed.value.message


async def test_embeddings_and_models(sdk: openai.AsyncOpenAI) -> None:
    raw = await sdk.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["alpha", "beta gamma"]
    )
    assert_valid("CreateEmbeddingResponse", raw.http_response.json())
    embedded = raw.parse()
    assert [item.index for item in embedded.data] == [0, 1]
    assert embedded.data[1].embedding[0] == float(len("beta gamma"))
    models = [model.id async for model in sdk.models.list()]
    assert "gpt-4o-mini" in models and "local/all-MiniLM-L6-v2" in models
    assert "claude-sonnet-4-5" not in models


async def test_app_route_takes_a_conversation_id(sdk: openai.AsyncOpenAI) -> None:
    app_sdk = sdk.with_options(base_url="http://testserver/v2/llm")
    completion = await app_sdk.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "v2"}]
    )
    assert completion.choices[0].message.content == "Echo: v2"
    with pytest.raises(openai.NotFoundError):
        await app_sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "v2"}],
            extra_body={"conversation_id": 987654},
        )
