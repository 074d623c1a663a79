"""The app's chat route keeps the history, with the official `openai` SDK as the client."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from modelyard.conversations import turns
from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from tests.conversations.conftest import (
    conversation_count,
    message_count,
    price,
    stored_messages,
)
from tests.fakes.openai_chat import ChatOpenAI
from tests.helpers import bearer

HEADER = "x-modelyard-conversation-id"


async def usage_records(database: Database) -> list[UsageRecord]:
    async with database.sessions() as session:
        return list(await session.scalars(select(UsageRecord).order_by(UsageRecord.id)))


async def ask(
    sdk: openai.AsyncOpenAI, messages: list[dict[str, str]], **extra: object
) -> tuple[int, str]:
    """One JSON turn; the conversation id from the header and the answer."""
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,  # type: ignore[arg-type]
        extra_body=extra or None,
    )
    return int(raw.headers[HEADER]), raw.parse().choices[0].message.content or ""


async def test_first_message_starts_a_titled_conversation(
    app_sdk: openai.AsyncOpenAI, database: Database, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    first = "  Plan a trip to Lisbon\nwith three days of museums and food"
    conversation_id, answer = await ask(
        app_sdk,
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": first}],
    )
    assert answer == f"Echo: {first}"
    detail = (
        await asgi_http.get(f"/v2/conversations/{conversation_id}", headers=bearer(user_token))
    ).json()
    assert detail["title"] == "Plan a trip to Lisbon"
    assert detail["model"] == "gpt-4o-mini"
    stored = await stored_messages(database, conversation_id)
    assert [(m.role, m.content) for m in stored] == [("user", first), ("assistant", answer)]


async def test_tokens_cost_model_and_latency_are_stored(
    app_sdk: openai.AsyncOpenAI, database: Database, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    conversation_id, _ = await ask(app_sdk, [{"role": "user", "content": "one two three"}])
    question, answer = await stored_messages(database, conversation_id)
    # The fake counts words: 3 prompt words, "Echo: one two three" is 4.
    assert (question.input_tokens, question.output_tokens) == (3, 0)
    assert (answer.input_tokens, answer.output_tokens) == (0, 4)
    assert answer.cost_usd == price(3, 4) == Decimal("0.00000285")
    assert question.cost_usd == 0
    assert question.model == answer.model == "gpt-4o-mini"
    assert answer.latency_ms is not None and answer.latency_ms >= 0
    assert question.latency_ms is None
    detail = (
        await asgi_http.get(f"/v2/conversations/{conversation_id}", headers=bearer(user_token))
    ).json()
    assert detail["message_count"] == 2
    assert (detail["input_tokens"], detail["output_tokens"], detail["total_tokens"]) == (3, 4, 7)
    assert Decimal(str(detail["cost_usd"])) == price(3, 4)


async def test_continuing_stores_only_the_new_turn(
    app_sdk: openai.AsyncOpenAI, database: Database, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    history = [{"role": "user", "content": "first question"}]
    conversation_id, answer = await ask(app_sdk, history)
    before = (
        await asgi_http.get(f"/v2/conversations/{conversation_id}", headers=bearer(user_token))
    ).json()
    history += [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "second question here"},
    ]
    again, second = await ask(app_sdk, history, conversation_id=conversation_id)
    assert again == conversation_id
    assert second == "Echo: second question here"
    stored = await stored_messages(database, conversation_id)
    assert [m.content for m in stored] == [
        "first question",
        "Echo: first question",
        "second question here",
        "Echo: second question here",
    ]
    # The whole history went upstream: 2 + 3 + 3 words of prompt.
    assert stored[2].input_tokens == 8 and stored[3].output_tokens == 4
    assert await conversation_count(database) == 1
    after = (
        await asgi_http.get(f"/v2/conversations/{conversation_id}", headers=bearer(user_token))
    ).json()
    assert after["title"] == "first question"
    assert after["updated_at"] > before["updated_at"]
    assert after["message_count"] == 4
    assert after["total_tokens"] == 2 + 3 + 8 + 4


@pytest.mark.parametrize("include_usage", [True, False])
async def test_a_streamed_answer_is_stored_complete(
    app_sdk: openai.AsyncOpenAI, database: Database, include_usage: bool
) -> None:
    text = "alpha beta gamma delta epsilon zeta eta"
    raw = await app_sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    conversation_id = int(raw.headers[HEADER])
    pieces = [c.choices[0].delta.content or "" async for c in raw.parse() if c.choices]
    assert len([p for p in pieces if p]) >= 3
    question, answer = await stored_messages(database, conversation_id)
    assert question.content == text
    assert answer.content == "".join(pieces) == f"Echo: {text}"
    assert (question.input_tokens, answer.output_tokens) == (7, 8)
    assert answer.cost_usd == price(7, 8)


async def test_another_users_conversation_is_not_found(
    app_sdk: openai.AsyncOpenAI,
    other_sdk: openai.AsyncOpenAI,
    database: Database,
    upstream: ChatOpenAI,
) -> None:
    theirs, _ = await ask(other_sdk, [{"role": "user", "content": "private"}])
    calls, messages = len(upstream.requests), await message_count(database)
    for conversation_id in (theirs, theirs + 1000):
        for stream in (False, True):
            with pytest.raises(openai.NotFoundError) as missing:
                await app_sdk.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "let me in"}],
                    stream=stream,
                    extra_body={"conversation_id": conversation_id},
                )
            assert f"No conversation with id {conversation_id}" in missing.value.message
    assert len(upstream.requests) == calls
    assert await message_count(database) == messages
    assert await conversation_count(database) == 1


async def test_a_failed_first_message_leaves_no_conversation(
    app: FastAPI, app_sdk: openai.AsyncOpenAI, database: Database, upstream: ChatOpenAI
) -> None:
    upstream.fail_with(500)
    with pytest.raises(openai.InternalServerError):
        await app_sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "lost"}]
        )
    assert upstream.requests, "the upstream was called"
    assert await conversation_count(database) == 0
    assert await message_count(database) == 0
    # The failure's usage record is kept; it still names the (removed) conversation, as a
    # log does: usage records carry no foreign key.
    await app.state.modelyard.usage.flush()
    [record] = await usage_records(database)
    assert record.status == 502 and record.conversation_id is not None


async def test_a_failed_turn_leaves_the_conversation_as_it_was(
    app: FastAPI, app_sdk: openai.AsyncOpenAI, database: Database, upstream: ChatOpenAI
) -> None:
    conversation_id, _ = await ask(app_sdk, [{"role": "user", "content": "kept"}])
    upstream.fail_with(500)
    with pytest.raises(openai.InternalServerError):
        await ask(
            app_sdk,
            [{"role": "user", "content": "kept"}, {"role": "user", "content": "lost too"}],
            conversation_id=conversation_id,
        )
    assert len(upstream.requests) > 1, "the upstream was called for the second turn"
    assert [m.content for m in await stored_messages(database, conversation_id)] == [
        "kept",
        "Echo: kept",
    ]
    assert await conversation_count(database) == 1
    await app.state.modelyard.usage.flush()
    records = [(r.status, r.conversation_id) for r in await usage_records(database)]
    assert records == [(200, conversation_id), (502, conversation_id)]


async def test_a_stream_cut_midway_stores_nothing(
    app: FastAPI, app_sdk: openai.AsyncOpenAI, database: Database, upstream: ChatOpenAI
) -> None:
    upstream.drop_after = 2
    raw = await app_sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "a b c d e f g h"}],
        stream=True,
    )
    assert int(raw.headers[HEADER]) >= 1
    with pytest.raises(openai.APIError, match="upstream stream failed"):
        async for _chunk in raw.parse():
            pass
    assert await conversation_count(database) == 0
    assert await message_count(database) == 0
    await app.state.modelyard.usage.flush()
    assert [(r.status, r.conversation_id) for r in await usage_records(database)] == [
        (502, int(raw.headers[HEADER]))
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_that_cannot_be_saved_is_reported(
    app_sdk: openai.AsyncOpenAI,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> bool:
        raise OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(turns, "add_turn", broken)
    with pytest.raises(openai.APIError) as failed:
        answer = await app_sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "unsaved"}],
            stream=stream,
        )
        if stream:
            async for _chunk in answer:  # type: ignore[union-attr]
                pass
    assert "could not be saved" in failed.value.message
    assert await conversation_count(database) == 0


async def test_deleting_right_after_a_turn_keeps_its_usage_record(
    app: FastAPI,
    app_sdk: openai.AsyncOpenAI,
    database: Database,
    asgi_http: httpx.AsyncClient,
    user_token: str,
) -> None:
    conversation_id, _ = await ask(app_sdk, [{"role": "user", "content": "short lived"}])
    deleted = await asgi_http.delete(
        f"/v2/conversations/{conversation_id}", headers=bearer(user_token)
    )
    assert deleted.status_code == 204
    assert await message_count(database) == 0
    await app.state.modelyard.usage.flush()
    assert [(r.status, r.conversation_id) for r in await usage_records(database)] == [
        (200, conversation_id)
    ]
