"""``POST /v1/responses`` passed through to an upstream that speaks it (a provider of type
``openai``): the client's body reaches ``/v1/responses`` with ``store: false``, the
upstream's Response and events come back as they came but for our id and model, stored
responses and metering work as on the translated path, and a route fails over from a
native target to a translated one. Every answer and event is checked against OpenAI's
spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from modelyard.usage.recorder import UsageRecorder
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_responses import ResponsesOpenAI
from tests.gateway.conftest import add_provider
from tests.helpers import bearer, make_token, make_user
from tests.openai_spec import assert_valid
from tests.responses.sse import OPENING_EVENTS, stream_events
from tests.responses.tooling_openai import ToolingOpenAI
from tests.responses.weather import WEATHER

MODEL = "gpt-4o-mini"


@pytest.fixture
def native() -> Iterator[ResponsesOpenAI]:
    with ResponsesOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture(autouse=True)
async def openai_provider(database: Database, native: ResponsesOpenAI) -> int:
    """The default provider is OpenAI itself (type ``openai``): it speaks the Responses API."""
    return await add_provider(database, "openai", native.base_url, OPENAI_KEY, default=True)


def sent_to(fake: ResponsesOpenAI) -> dict[str, Any]:
    request = fake.last_request
    assert request.path.endswith("/responses"), request.path
    body: dict[str, Any] = request.json()
    return body


async def usage_rows(app: FastAPI) -> list[UsageRecord]:
    recorder: UsageRecorder = app.state.modelyard.usage
    await recorder.flush()
    async with recorder.database.sessions() as session:
        return list(await session.scalars(select(UsageRecord).order_by(UsageRecord.id)))


async def test_a_response_is_relayed_from_the_upstream(
    sdk: openai.AsyncOpenAI, native: ResponsesOpenAI, app: FastAPI
) -> None:
    raw = await sdk.responses.with_raw_response.create(
        model=MODEL, input="hello there", instructions="Be brief.", max_output_tokens=50
    )
    answer = raw.http_response.json()
    assert_valid("Response", answer)
    response = raw.parse()
    assert response.output_text == "Native: hello there"
    assert response.id.startswith("resp_") and response.id != "resp_upstream1"
    assert response.model == MODEL and answer["store"] is True
    assert raw.headers["x-modelyard-provider"] == "openai"
    sent = sent_to(native)
    assert sent["model"] == MODEL and sent["input"] == "hello there"
    assert sent["instructions"] == "Be brief." and sent["max_output_tokens"] == 50
    assert sent["store"] is False and sent["stream"] is False
    assert "previous_response_id" not in sent
    [row] = await usage_rows(app)
    assert (row.endpoint, row.status, row.provider) == ("responses", 200, "openai")
    assert (row.input_tokens, row.output_tokens, row.estimated) == (4, 3, False)


async def test_a_stream_relays_the_upstream_events(
    asgi_http: httpx.AsyncClient, user_token: str, native: ResponsesOpenAI, app: FastAPI
) -> None:
    events = await stream_events(asgi_http, user_token, model=MODEL, input="one two three")
    kinds = [event["type"] for event in events]
    assert kinds[:4] == OPENING_EVENTS
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "Native: one two three" and len(deltas) == 4
    ids = {event["response"]["id"] for event in events if "response" in event}
    assert len(ids) == 1 and ids != {"resp_upstream1"}
    assert sent_to(native)["stream"] is True and sent_to(native)["store"] is False
    [row] = await usage_rows(app)
    assert (row.endpoint, row.status, row.input_tokens, row.output_tokens) == (
        "responses",
        200,
        3,
        4,
    )


async def test_a_tool_round_trip_goes_natively(
    sdk: openai.AsyncOpenAI, native: ResponsesOpenAI
) -> None:
    first = await sdk.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER])
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert sent_to(native)["tools"][0]["name"] == "get_weather"
    second = await sdk.responses.create(
        model=MODEL,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"},
        ],
    )
    assert second.output_text == "Native: the tool said Sunny"
    assert sent_to(native)["input"][-1]["output"] == "Sunny"


async def test_previous_response_id_is_resolved_from_our_store(
    sdk: openai.AsyncOpenAI, native: ResponsesOpenAI, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    first = await sdk.responses.create(model=MODEL, input="my name is Ada")
    follow = await sdk.responses.create(
        model=MODEL, input="what is my name?", previous_response_id=first.id
    )
    assert follow.previous_response_id == first.id
    sent = sent_to(native)
    assert "previous_response_id" not in sent and sent["store"] is False
    texts = [
        (
            item.get("role"),
            item["content"] if isinstance(item["content"], str) else item["content"][0]["text"],
        )
        for item in sent["input"]
    ]
    assert texts == [
        ("user", "my name is Ada"),
        ("assistant", "Native: my name is Ada"),
        ("user", "what is my name?"),
    ]
    stored = await asgi_http.get(f"/v1/responses/{follow.id}", headers=bearer(user_token))
    assert stored.status_code == 200 and stored.json()["output"][0]["content"][0]["text"] == (
        "Native: what is my name?"
    )
    assert_valid("Response", stored.json())


async def test_another_users_previous_response_is_a_404(
    sdk: openai.AsyncOpenAI, other_sdk: openai.AsyncOpenAI, native: ResponsesOpenAI
) -> None:
    mine = await sdk.responses.create(model=MODEL, input="secret plan")
    sent_before = len(native.requests)
    with pytest.raises(openai.NotFoundError):
        await other_sdk.responses.create(model=MODEL, input="go on", previous_response_id=mine.id)
    assert len(native.requests) == sent_before


async def test_a_failed_native_stream_ends_with_an_error_event(
    asgi_http: httpx.AsyncClient, user_token: str, native: ResponsesOpenAI
) -> None:
    native.fail_stream_after = 2
    events = await stream_events(asgi_http, user_token, model=MODEL, input="one two three")
    assert events[-1]["type"] == "error"
    assert [e["type"] for e in events].count("response.output_text.delta") == 2


async def test_a_route_fails_over_from_native_to_translated(
    database: Database,
    asgi_http: httpx.AsyncClient,
    native: ResponsesOpenAI,
    app: FastAPI,
) -> None:
    with ToolingOpenAI(keys={OPENAI_KEY}) as compatible:
        await add_provider(
            database, "compatible", compatible.base_url, OPENAI_KEY, kind="openai_compatible"
        )
        staff = await make_token(
            database, await make_user(database, "staff@example.com", staff=True)
        )
        created = await asgi_http.post(
            "/v2/admin/routes",
            headers=bearer(staff),
            json={
                "name": "team-chat",
                "targets": [
                    {"provider": "openai", "model": MODEL},
                    {"provider": "openai_compatible", "model": MODEL},
                ],
            },
        )
        assert created.status_code == 201, created.text
        native.fail_with(503)
        answer = await asgi_http.post(
            "/v1/responses", headers=bearer(staff), json={"model": "team-chat", "input": "hi"}
        )
        assert answer.status_code == 200, answer.text
        assert_valid("Response", answer.json())
        assert answer.json()["output"][0]["content"][0]["text"] == "Echo: hi"
        assert answer.headers["x-modelyard-provider"] == "openai_compatible"
        assert sent_to(native)["input"] == "hi"  # tried natively first
        assert compatible.last_request.path.endswith("/chat/completions")
        events = await stream_events(asgi_http, staff, model="team-chat", input="streamed")
        assert events[-1]["type"] == "response.completed"
        assert "Echo: streamed" in str(events[-1]["response"]["output"])
        native.fail_with(None)
        events = await stream_events(asgi_http, staff, model="team-chat", input="again")
        assert events[-1]["type"] == "response.completed"
        assert "Native: again" in str(events[-1]["response"]["output"])
