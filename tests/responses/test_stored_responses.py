"""Stored responses: ``store``, ``GET`` / ``DELETE /v1/responses/{id}``,
``previous_response_id``, retention, tenancy (another user's id is a 404 like a missing
one), and the usage each call records."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, update

from modelyard.db.engine import Database
from modelyard.db.models import StoredResponse, UsageRecord
from modelyard.db.types import utcnow
from modelyard.responses.store import ResponseStore
from modelyard.usage.recorder import UsageRecorder
from tests.helpers import bearer, make_user
from tests.openai_spec import assert_valid
from tests.responses.sse import OPENING_EVENTS, stream_events
from tests.responses.tooling_openai import ToolingOpenAI

MODEL = "openai_compatible/gpt-4o-mini"


async def stored_count(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(StoredResponse)) or 0)


async def expire(database: Database, response_id: str) -> None:
    async with database.sessions() as session:
        await session.execute(
            update(StoredResponse)
            .where(StoredResponse.id == response_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


def error_without_id(response: httpx.Response, response_id: str) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert_valid("ErrorResponse", body)
    body["error"]["message"] = body["error"]["message"].replace(response_id, "ID")
    return body


async def test_store_get_and_delete(
    sdk: openai.AsyncOpenAI, asgi_http: httpx.AsyncClient, user_token: str, database: Database
) -> None:
    created = await sdk.responses.create(model=MODEL, input="keep this")
    fetched = await asgi_http.get(f"/v1/responses/{created.id}", headers=bearer(user_token))
    assert fetched.status_code == 200, fetched.text
    assert_valid("Response", fetched.json())
    assert fetched.json() == created.model_dump(mode="json", exclude_unset=True)
    retrieved = await sdk.responses.retrieve(created.id)
    assert retrieved.output_text == "Echo: keep this" and retrieved.store is True

    deleted = await asgi_http.delete(f"/v1/responses/{created.id}", headers=bearer(user_token))
    assert deleted.status_code == 200
    assert deleted.json() == {"id": created.id, "object": "response", "deleted": True}
    assert await stored_count(database) == 0
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.delete(created.id)


async def test_store_false_keeps_nothing(sdk: openai.AsyncOpenAI, database: Database) -> None:
    created = await sdk.responses.create(model=MODEL, input="forget this", store=False)
    assert created.store is False
    assert await stored_count(database) == 0
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.create(model=MODEL, input="and?", previous_response_id=created.id)


async def test_a_streamed_response_is_stored_as_it_ended(
    asgi_http: httpx.AsyncClient, user_token: str, sdk: openai.AsyncOpenAI
) -> None:
    events = await stream_events(asgi_http, user_token, model=MODEL, input="one two three")
    final = events[-1]["response"]
    fetched = await asgi_http.get(f"/v1/responses/{final['id']}", headers=bearer(user_token))
    assert fetched.status_code == 200 and fetched.json() == final
    follow_up = await sdk.responses.create(
        model=MODEL, input="four", previous_response_id=final["id"]
    )
    assert follow_up.output_text == "Echo: four"


async def test_previous_response_id_continues_the_conversation(
    sdk: openai.AsyncOpenAI, upstream: ToolingOpenAI
) -> None:
    first = await sdk.responses.create(model=MODEL, instructions="Be brief.", input="Hi")
    second = await sdk.responses.create(
        model=MODEL, instructions="Be kind.", input="Again", previous_response_id=first.id
    )
    # Instructions are not carried over (as at OpenAI); the turns are.
    assert upstream.last_request.json()["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Echo: Hi"},
        {"role": "user", "content": "Again"},
    ]
    await sdk.responses.create(model=MODEL, input="Third", previous_response_id=second.id)
    assert [m["content"] for m in upstream.last_request.json()["messages"]] == [
        "Hi",
        "Echo: Hi",
        "Again",
        "Echo: Again",
        "Third",
    ]


async def test_another_users_response_is_a_404_like_a_missing_one(
    sdk: openai.AsyncOpenAI,
    other_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    upstream: ToolingOpenAI,
    database: Database,
) -> None:
    mine = await sdk.responses.create(model=MODEL, input="secret plans")
    missing = "resp_" + "0" * 32
    other = {"authorization": f"Bearer {other_sdk.api_key}"}
    for method in ("GET", "DELETE"):
        theirs = await asgi_http.request(method, f"/v1/responses/{mine.id}", headers=other)
        absent = await asgi_http.request(method, f"/v1/responses/{missing}", headers=other)
        assert theirs.status_code == absent.status_code == 404
        assert error_without_id(theirs, mine.id) == error_without_id(absent, missing)
        assert "secret" not in theirs.text

    calls_before = len(upstream.requests)
    body = {"model": MODEL, "input": "continue"}
    theirs = await asgi_http.post(
        "/v1/responses", headers=other, json={**body, "previous_response_id": mine.id}
    )
    absent = await asgi_http.post(
        "/v1/responses", headers=other, json={**body, "previous_response_id": missing}
    )
    assert theirs.status_code == absent.status_code == 404
    assert error_without_id(theirs, mine.id) == error_without_id(absent, missing)
    assert theirs.json()["error"]["param"] == "previous_response_id"
    assert len(upstream.requests) == calls_before

    # Still there for its owner.
    assert (await sdk.responses.retrieve(mine.id)).output_text == "Echo: secret plans"
    assert await stored_count(database) == 1


async def test_expired_responses_are_gone_and_purged(
    sdk: openai.AsyncOpenAI, database: Database, app: FastAPI
) -> None:
    assert app.state.modelyard.settings.responses_retention_days == 30
    old = await sdk.responses.create(model=MODEL, input="old")
    async with database.sessions() as session:
        row = await session.get(StoredResponse, old.id)
        assert row is not None
        assert timedelta(days=29) < row.expires_at - utcnow() <= timedelta(days=30)
    await expire(database, old.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(old.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.create(model=MODEL, input="more", previous_response_id=old.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.delete(old.id)
    assert await stored_count(database) == 1
    store: ResponseStore = app.state.modelyard.responses
    store.purge_every_seconds = 0  # the next save purges (by default at most once a minute)
    new = await sdk.responses.create(model=MODEL, input="new")
    async with database.sessions() as session:
        ids = list(await session.scalars(select(StoredResponse.id)))
    assert ids == [new.id]


async def test_saves_waiting_together_share_one_insert_and_are_readable_at_once(
    sdk: openai.AsyncOpenAI, database: Database
) -> None:
    user = await make_user(database, "group-commit@example.com")
    store = ResponseStore(database, retention_days=1)
    inserts: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO STORED_RESPONSES"):
            inserts.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        await asyncio.gather(
            *(
                store.save(user_id=user.id, response={"id": f"resp_{i}", "model": "m"}, context=[])
                for i in range(24)
            )
        )
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len(inserts) == 1  # one statement (executemany) and one commit for all 24
    rows = [await store.load(user_id=user.id, response_id=f"resp_{i}") for i in range(24)]
    assert [row.id for row in rows] == [f"resp_{i}" for i in range(24)]
    # Through the API: each create returns once its row is committed, so the next request
    # finds it at once, also when many were created together.
    created = await asyncio.gather(
        *(sdk.responses.create(model=MODEL, input=f"n{i}") for i in range(8))
    )
    for response in created:
        assert (await sdk.responses.retrieve(response.id)).id == response.id
    follow = await sdk.responses.create(
        model=MODEL, input="next", previous_response_id=created[-1].id
    )
    assert follow.output_text.startswith("Echo:")


async def test_usage_is_recorded_as_responses(
    sdk: openai.AsyncOpenAI, asgi_http: httpx.AsyncClient, user_token: str, app: FastAPI
) -> None:
    await sdk.responses.create(model=MODEL, input="count me")
    await stream_events(asgi_http, user_token, model=MODEL, input="one two three")
    recorder: UsageRecorder = app.state.modelyard.usage
    await recorder.flush()
    async with recorder.database.sessions() as session:
        rows = list(await session.scalars(select(UsageRecord).order_by(UsageRecord.id)))
    assert [(row.endpoint, row.status, row.model) for row in rows] == [
        ("responses", 200, MODEL),
        ("responses", 200, MODEL),
    ]
    assert [(row.input_tokens, row.output_tokens, row.estimated) for row in rows] == [
        (2, 3, False),
        (3, 4, False),
    ]
    assert all(row.provider == "openai_compatible" for row in rows)


@pytest.mark.parametrize("fault", ["drop_after", "error_after"])
async def test_a_stream_that_fails_midway_ends_with_response_failed(
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ToolingOpenAI,
    database: Database,
    app: FastAPI,
    fault: str,
) -> None:
    setattr(upstream, fault, 1)
    events = await stream_events(asgi_http, user_token, model=MODEL, input="a b c d e f g h")
    kinds = [event["type"] for event in events]
    assert kinds[:4] == OPENING_EVENTS
    assert kinds[-1] == "response.failed" and "response.completed" not in kinds
    failed = events[-1]["response"]
    assert_valid("Response", failed)
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert "The upstream stream failed" in failed["error"]["message"]
    assert await stored_count(database) == 0
    recorder: UsageRecorder = app.state.modelyard.usage
    await recorder.flush()
    async with recorder.database.sessions() as session:
        [row] = list(await session.scalars(select(UsageRecord)))
    assert (row.endpoint, row.status, row.error_code) == ("responses", 502, "stream_interrupted")


async def test_input_items_list_what_a_response_was_given(
    sdk: openai.AsyncOpenAI,
    other_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
) -> None:
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    first = await sdk.responses.create(
        model=MODEL,
        instructions="Not an item.",
        input="Weather?",
        tools=[tool],  # type: ignore[list-item]
    )
    second = await sdk.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": "call_fake1", "output": "Sunny"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "And this?"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                ],
            },
        ],
    )
    url = f"/v1/responses/{second.id}/input_items"
    listed = await asgi_http.get(url, params={"order": "asc"}, headers=bearer(user_token))
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert_valid("ResponseItemList", page)
    assert [item["type"] for item in page["data"]] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    user_text, call, result, last = page["data"]
    assert user_text["content"] == [{"type": "input_text", "text": "Weather?"}]
    assert (call["call_id"], call["name"]) == ("call_fake1", "get_weather")
    assert (result["call_id"], result["output"]) == ("call_fake1", "Sunny")
    assert last["content"][1] == {
        "type": "input_image",
        "image_url": "https://example.com/a.png",
        "detail": "auto",
    }
    assert page["has_more"] is False and page["first_id"] == user_text["id"]

    # The SDK's pager, newest first (the default), two at a time.
    ids = [item.id async for item in sdk.responses.input_items.list(second.id, limit=2)]
    assert ids == [item["id"] for item in reversed(page["data"])]
    refused = await asgi_http.get(url, params={"after": "msg_nope"}, headers=bearer(user_token))
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "after"
    with pytest.raises(openai.NotFoundError):
        await other_sdk.responses.input_items.list(second.id)
