"""``POST /v1/chat/completions`` is answered below FastAPI (:mod:`modelyard.api.chat_fast_lane`)
exactly as FastAPI's own route answers it: every refusal (no body, bad JSON, a bad field,
no or a wrong token, an unknown model) is the same status and the same OpenAI-shaped
error from both, and the metrics still name the route's template."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.api.app import create_app
from modelyard.api.chat_fast_lane import PATH, ChatFastLane
from modelyard.config import Settings
from modelyard.db.engine import Database
from tests.helpers import bearer, make_token, make_user


@pytest.fixture
async def fastapi_only(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The same application without the lane: FastAPI's route answers the path."""
    application = create_app(settings, system_keys={})
    application.user_middleware = [
        middleware
        for middleware in application.user_middleware
        if middleware.cls is not ChatFastLane
    ]
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await application.state.modelyard.aclose()


def _requests(token: str) -> list[tuple[str, dict[str, Any]]]:
    json_type = {"content-type": "application/json"}
    chat = {"model": "nobody/such-model", "messages": [{"role": "user", "content": "hi"}]}
    return [
        ("no body", {"headers": bearer(token)}),
        ("bad JSON", {"content": b'{"model": ', "headers": {**bearer(token), **json_type}}),
        ("bad JSON, no token", {"content": b"{", "headers": json_type}),
        ("a list", {"json": [chat], "headers": bearer(token)}),
        ("no messages", {"json": {"model": "x"}, "headers": bearer(token)}),
        ("an unknown field", {"json": {**chat, "colour": "red"}, "headers": bearer(token)}),
        ("a bad temperature", {"json": {**chat, "temperature": "hot"}, "headers": bearer(token)}),
        ("no token", {"json": chat}),
        ("a wrong token", {"json": chat, "headers": bearer("myd_not-a-token")}),
        ("an unknown model", {"json": chat, "headers": bearer(token)}),
    ]


async def test_the_lane_refuses_what_fastapi_refuses_the_same_way(
    client: httpx.AsyncClient, fastapi_only: httpx.AsyncClient, database: Database
) -> None:
    token = await make_token(database, await make_user(database, "lane@example.com"))
    for name, request in _requests(token):
        lane = await client.post(PATH, **request)
        fastapi = await fastapi_only.post(PATH, **request)
        assert 400 <= lane.status_code < 500, (name, lane.text)
        assert (lane.status_code, lane.json()) == (fastapi.status_code, fastapi.json()), name
        assert lane.headers.get("x-request-id"), name


async def test_the_metrics_name_the_route_template(client: httpx.AsyncClient, app: FastAPI) -> None:
    await client.post(PATH, json={"model": "x", "messages": []})
    exposition = (await client.get("/metrics")).text
    assert f'route="{PATH}"' in exposition
    assert 'route="unmatched",status="401"' not in exposition
