"""A stream cut midway is charged: by the client (status 499, the app served on 127.0.0.1
so that it really sees the client leave) or by the upstream (502); the prompt and the
tokens relayed so far are counted locally when the provider reported none, priced, and
settled against the caller's budget."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest
from fastapi import FastAPI
from openai.types.chat import ChatCompletionMessageParam

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from modelyard.usage.recorder import UsageRecorder
from modelyard.usage.tokens import count_message_tokens, count_tokens
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.helpers import bearer
from tests.limits.helpers import set_limits, token_record
from tests.usage.conftest import usage_rows
from tests.usage.costs import GPT_4O_MINI, cost
from tests.usage.live import LONG_REPLY, read_then_leave, serve, slow_openai, wait_for_records

ASK: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "tell me a long story about tokens"}
]


async def spent(http: httpx.AsyncClient, token: str) -> Decimal:
    """The caller's budget spend this period, as the limits API shows it."""
    response = await http.get("/v2/users/me/limits", headers=bearer(token))
    assert response.status_code == 200, response.text
    return Decimal(response.json()["user"]["usage"]["spent_usd"])


def relayed_text(chunks: Sequence[Any]) -> str:
    return "".join(
        choice.delta.content or "" for chunk in chunks for choice in getattr(chunk, "choices", [])
    )


def assert_charged_for(record: UsageRecord, text: str) -> None:
    """Charged for the prompt and at least ``text``, at gpt-4o-mini's price."""
    assert record.input_tokens == count_message_tokens("gpt-4o-mini", ASK) > 0
    assert record.output_tokens >= count_tokens("gpt-4o-mini", text) > 0
    assert record.cost_usd == cost(record.input_tokens, record.output_tokens, GPT_4O_MINI)
    assert record.cost_usd > 0
    assert record.estimated  # the provider reports usage only at the end


async def test_a_client_that_leaves_midway_is_charged_with_status_499(
    app: FastAPI, settings: Settings, database: Database, user_token: str
) -> None:
    record_of_token = await token_record(database, user_token)
    await set_limits([app], "user", record_of_token.user_id, budget_usd=Decimal("5"))
    with slow_openai() as upstream:
        await add_provider(database, "slow", upstream.base_url, OPENAI_KEY)
        with serve(settings) as live:
            async with httpx.AsyncClient(base_url=live.url) as http:
                assert await spent(http, user_token) == 0
                client = openai.AsyncOpenAI(
                    base_url=f"{live.url}/v1", api_key=user_token, max_retries=0
                )
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=ASK, stream=True
                )
                chunks = await read_then_leave(stream, 3)
                [record] = await wait_for_records(database, 1)
                after = await spent(http, user_token)
            assert len(upstream.requests) == 1
    text = relayed_text(chunks)
    assert text.startswith("word0")
    assert (record.status, record.error_code) == (499, "client_closed_request")
    assert (record.provider, record.upstream_model) == ("openai", "gpt-4o-mini")
    assert record.user_id == record_of_token.user_id
    assert_charged_for(record, text)
    # Not the whole answer: the stream stopped soon after the client left.
    assert record.output_tokens < count_tokens("gpt-4o-mini", LONG_REPLY)
    assert after == record.cost_usd  # the budget spend went up by what the cut stream cost


async def test_a_client_that_leaves_before_the_first_chunk_pays_for_the_prompt(
    app: FastAPI, settings: Settings, database: Database, user_token: str
) -> None:
    with slow_openai() as upstream:
        upstream.delay = 1.0  # the answer starts after the client gave up
        await add_provider(database, "slow", upstream.base_url, OPENAI_KEY)
        with serve(settings) as live:
            async with httpx.AsyncClient(base_url=live.url, timeout=0.3) as http:
                with pytest.raises(httpx.ReadTimeout):
                    await http.post(
                        "/v1/chat/completions",
                        json={"model": "gpt-4o-mini", "messages": ASK, "stream": True},
                        headers=bearer(user_token),
                    )
            [record] = await wait_for_records(database, 1)
    assert (record.status, record.error_code) == (499, "client_closed_request")
    assert record.input_tokens == count_message_tokens("gpt-4o-mini", ASK)
    assert record.output_tokens == 0
    assert record.cost_usd == cost(record.input_tokens, 0, GPT_4O_MINI) > 0


@pytest.mark.usefixtures("openai_provider")
async def test_an_upstream_that_dies_midway_is_charged_with_status_502(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    upstream: ChatOpenAI,
    recorder: UsageRecorder,
    database: Database,
    user_token: str,
) -> None:
    record_of_token = await token_record(database, user_token)
    await set_limits([app], "user", record_of_token.user_id, budget_usd=Decimal("5"))
    upstream.scripted_reply = "one two three four five six seven eight"
    upstream.stream_chunks = 8
    upstream.drop_after = 3
    stream = await sdk.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
    chunks = []
    with pytest.raises(openai.APIError, match="upstream stream failed"):
        async for chunk in stream:
            chunks.append(chunk)
    await recorder.flush()
    [record] = await usage_rows(database)
    text = relayed_text(chunks)
    assert text == "one two three"
    assert (record.status, record.error_code) == (502, "stream_interrupted")
    assert record.output_tokens == count_tokens("gpt-4o-mini", text)
    assert_charged_for(record, text)
    assert await spent(asgi_http, user_token) == record.cost_usd


async def test_a_messages_stream_the_client_leaves_is_charged_with_status_499(
    settings: Settings, database: Database, user_token: str
) -> None:
    with slow_openai() as upstream:
        await add_provider(database, "slow", upstream.base_url, OPENAI_KEY)
        with serve(settings) as live:
            client = anthropic.AsyncAnthropic(base_url=live.url, api_key=user_token, max_retries=0)
            text = ""
            async with client.messages.stream(
                model="gpt-4o-mini",
                max_tokens=500,
                messages=ASK,  # type: ignore[arg-type]
            ) as stream:
                async for piece in stream.text_stream:
                    text += piece
                    if text.count("word") >= 3:
                        break
            [record] = await wait_for_records(database, 1)
    assert text.startswith("word0")
    assert (record.endpoint, record.status, record.error_code) == (
        "messages",
        499,
        "client_closed_request",
    )
    assert_charged_for(record, text)
