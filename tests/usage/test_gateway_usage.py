"""Exactly one usage record per gateway request, through the official `openai` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest
from fastapi import FastAPI
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import ApiToken, UsageRecord, User
from modelyard.usage.recorder import UsageRecorder
from modelyard.usage.tokens import count_message_tokens, count_tokens
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.usage.conftest import usage_rows
from tests.usage.costs import GPT_4O_MINI, cost

pytestmark = pytest.mark.usefixtures("openai_provider")


#: gpt-4o-mini in the catalog: USD per million input / output tokens.
async def only_record(recorder: UsageRecorder) -> UsageRecord:
    await recorder.flush()
    rows = await usage_rows(recorder.database)
    assert len(rows) == 1, [(r.endpoint, r.status) for r in rows]
    return rows[0]


async def sdk_user(database: Database) -> tuple[User, ApiToken]:
    async with database.sessions() as session:
        token = (await session.scalars(select(ApiToken))).one()
        user = await session.get(User, token.user_id)
        assert user is not None
        return user, token


async def test_chat_completion_is_recorded_once_with_tokens_and_cost(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI, recorder: UsageRecorder, database: Database
) -> None:
    upstream.delay = 0.01
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count these four words"}]
    )
    usage = raw.parse().usage
    assert usage is not None
    record = await only_record(recorder)
    user, token = await sdk_user(database)
    assert (record.input_tokens, record.output_tokens) == (4, 5)
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 5)
    assert record.cost_usd == cost(4, 5, GPT_4O_MINI) == Decimal("0.0000036")
    assert record.status == 200 and record.error_code is None
    assert record.attempts == 1 and record.latency_ms >= 10
    assert record.endpoint == "chat" and record.model == "gpt-4o-mini"
    assert (record.provider, record.upstream_model) == ("openai", "gpt-4o-mini")
    assert record.user_id == user.id and record.api_token_id == token.id
    assert record.request_id == raw.headers["x-request-id"]
    assert not record.estimated and not record.cache_hit


@pytest.mark.parametrize("include_usage", [True, False])
async def test_streams_are_recorded_with_the_provider_usage(
    sdk: openai.AsyncOpenAI, recorder: UsageRecorder, include_usage: bool
) -> None:
    stream = await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    seen = [chunk.usage async for chunk in stream if chunk.usage is not None]
    assert len(seen) == (1 if include_usage else 0)
    record = await only_record(recorder)
    # The gateway always asks upstream for usage: reported, not estimated, either way.
    assert (record.input_tokens, record.output_tokens) == (6, 7)
    assert record.cost_usd == cost(6, 7, GPT_4O_MINI)
    assert record.status == 200 and not record.estimated and record.latency_ms > 0


async def test_embeddings_are_recorded(sdk: openai.AsyncOpenAI, recorder: UsageRecorder) -> None:
    await sdk.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta gamma"])
    record = await only_record(recorder)
    assert record.endpoint == "embeddings" and record.model == "text-embedding-3-small"
    assert (record.input_tokens, record.output_tokens) == (3, 0)
    assert record.cost_usd == cost(3, 0, (Decimal("0.02"), Decimal(0)))
    assert record.status == 200 and record.attempts == 1


async def test_an_upstream_failure_is_recorded_with_its_status(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI, recorder: UsageRecorder
) -> None:
    upstream.fail_with(500)
    with pytest.raises(openai.APIStatusError) as failed:
        await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    record = await only_record(recorder)
    assert record.status == failed.value.status_code >= 500
    assert record.error_code and record.model == "gpt-4o-mini"
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (0, 0, Decimal(0))
    assert not record.estimated
    assert record.provider == "openai" and record.attempts == len(upstream.requests) >= 1


async def test_an_unknown_model_is_recorded_as_a_404(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI, recorder: UsageRecorder
) -> None:
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    record = await only_record(recorder)
    assert (record.status, record.model, record.provider) == (404, "no-such-model", None)
    assert record.cost_usd == 0 and upstream.requests == []


class SilentUsageOpenAI(ChatOpenAI):
    """A provider whose streams never report usage, even when asked."""

    async def _stream(self, body: dict[str, Any], reply: str) -> AsyncIterator[bytes]:
        async for piece in super()._stream({**body, "stream_options": None}, reply):
            yield piece


@pytest.fixture
def silent() -> Iterator[SilentUsageOpenAI]:
    with SilentUsageOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


async def test_usage_is_estimated_when_the_provider_reports_none(
    sdk: openai.AsyncOpenAI,
    database: Database,
    silent: SilentUsageOpenAI,
    recorder: UsageRecorder,
    app: FastAPI,
) -> None:
    await add_provider(database, "silent", silent.base_url, OPENAI_KEY, default=True)
    app.state.modelyard.gateway.invalidate()
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "please count my tokens for me"}
    ]
    stream = await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    # The gateway asked for usage; this provider sent none.
    assert silent.requests[-1].json()["stream_options"] == {"include_usage": True}
    record = await only_record(recorder)
    assert record.estimated and record.provider == "openai"
    assert record.input_tokens == count_message_tokens("gpt-4o-mini", messages) > 0
    assert record.output_tokens == count_tokens("gpt-4o-mini", text) > 0
    assert record.cost_usd == cost(record.input_tokens, record.output_tokens, GPT_4O_MINI)
