"""Named routes: priority lists across models, endpoints and keys; admin API and file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import AuditLogEntry
from tests.fakes.fixtures import HUGGINGFACE_KEY, OPENAI_KEY
from tests.fakes.hf_inference import FakeHfInference
from tests.fakes.openai_chat import ChatHuggingFace, ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.helpers import bearer, make_token, make_user

EXAMPLE_ROUTE: dict[str, Any] = {
    "name": "text-generation",
    "targets": [
        {"provider": "openai", "model": "gpt-3.5-turbo"},
        {"provider": "huggingface", "endpoint": "router", "model": "HuggingFaceH4/zephyr-7b-beta"},
        {
            "provider": "huggingface",
            "endpoint": "direct",
            "model": "OpenAssistant/oasst-sft-7-llama-2-13b",
        },
        {"provider": "huggingface", "endpoint": "direct", "model": "HuggingFaceH4/zephyr-7b-beta"},
        {"provider": "huggingface", "endpoint": "direct", "model": "facebook/bart-large-cnn"},
    ],
}


@pytest.fixture
async def staff(database: Database) -> dict[str, str]:
    user = await make_user(database, "routes@example.com", staff=True)
    return bearer(await make_token(database, user))


@pytest.fixture
def openai_up() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY}, models=["gpt-3.5-turbo"]) as fake:
        yield fake


@pytest.fixture
def hf_router() -> Iterator[ChatHuggingFace]:
    with ChatHuggingFace(keys={HUGGINGFACE_KEY}, models=["HuggingFaceH4/zephyr-7b-beta"]) as fake:
        yield fake


@pytest.fixture
def hf_direct() -> Iterator[FakeHfInference]:
    with FakeHfInference(keys={HUGGINGFACE_KEY}) as fake:
        yield fake


@pytest.fixture
async def example_route(
    app: FastAPI,
    database: Database,
    client: httpx.AsyncClient,
    staff: dict[str, str],
    openai_up: ChatOpenAI,
    hf_router: ChatHuggingFace,
    hf_direct: FakeHfInference,
) -> dict[str, Any]:
    await add_provider(database, "openai", openai_up.base_url, OPENAI_KEY)
    await add_provider(database, "hf", hf_router.base_url, HUGGINGFACE_KEY, kind="huggingface")
    app.state.modelyard.settings.hf_inference_url = f"{hf_direct.url}/models"
    created = await client.post("/v2/admin/routes", json=EXAMPLE_ROUTE, headers=staff)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


async def test_the_first_healthy_target_answers(
    example_route: dict[str, Any], sdk: openai.AsyncOpenAI, openai_up: ChatOpenAI
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="text-generation", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content == "Echo: hi"
    assert raw.headers["x-modelyard-route"] == "text-generation"
    assert raw.headers["x-modelyard-provider"] == "openai"
    assert raw.headers["x-modelyard-model"] == "gpt-3.5-turbo"
    assert raw.headers["x-modelyard-attempts"] == "1"
    assert openai_up.last_request.json()["model"] == "gpt-3.5-turbo"


async def test_failover_walks_models_then_endpoints_in_order(
    example_route: dict[str, Any],
    sdk: openai.AsyncOpenAI,
    openai_up: ChatOpenAI,
    hf_router: ChatHuggingFace,
    hf_direct: FakeHfInference,
) -> None:
    openai_up.fail_with(429, headers={"retry-after": "30"})
    hf_router.fail_with(503)
    raw = await sdk.chat.completions.with_raw_response.create(
        model="text-generation", messages=[{"role": "user", "content": "route me"}]
    )
    assert raw.parse().choices[0].message.content.startswith("Echo: route me")
    assert raw.headers["x-modelyard-provider"] == "huggingface"
    assert raw.headers["x-modelyard-model"] == "HuggingFaceH4/zephyr-7b-beta"
    assert raw.headers["x-modelyard-attempts"] == "4"
    assert [r.path for r in hf_direct.requests] == [
        "/models/OpenAssistant/oasst-sft-7-llama-2-13b",
        "/models/HuggingFaceH4/zephyr-7b-beta",
    ]
    assert len(openai_up.requests) == 1 and len(hf_router.requests) == 1


async def test_everything_failing_is_a_502_listing_what_was_tried(
    example_route: dict[str, Any],
    staff_sdk: openai.AsyncOpenAI,
    openai_up: ChatOpenAI,
    hf_router: ChatHuggingFace,
    hf_direct: FakeHfInference,
) -> None:
    """(For staff: users get one short message, see tests/api/test_upstream_detail.py.)"""
    openai_up.fail_with(500)
    hf_router.fail_with(500)
    hf_direct.fail_with(500)
    with pytest.raises(openai.InternalServerError) as failed:
        await staff_sdk.chat.completions.create(
            model="text-generation", messages=[{"role": "user", "content": "x"}]
        )
    assert failed.value.status_code == 502
    message = failed.value.message
    assert "Every target failed" in message
    for model in ("gpt-3.5-turbo", "oasst-sft-7-llama-2-13b", "bart-large-cnn"):
        assert model in message
    assert OPENAI_KEY not in message and HUGGINGFACE_KEY not in message


async def test_a_client_error_is_returned_not_failed_over(
    example_route: dict[str, Any],
    sdk: openai.AsyncOpenAI,
    openai_up: ChatOpenAI,
    hf_router: ChatHuggingFace,
) -> None:
    openai_up.fail_with(400)
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(
            model="text-generation", messages=[{"role": "user", "content": "x"}]
        )
    assert len(openai_up.requests) == 1
    assert hf_router.requests == []


async def test_route_admin_api_validates_and_audits(
    client: httpx.AsyncClient, database: Database, staff: dict[str, str]
) -> None:
    bad_endpoint = {
        "name": "r",
        "targets": [{"provider": "openai", "model": "x", "endpoint": "direct"}],
    }
    response = await client.post("/v2/admin/routes", json=bad_endpoint, headers=staff)
    assert response.status_code == 422 and "not an endpoint of openai" in response.text
    slash = {"name": "a/b", "targets": [{"provider": "openai", "model": "x"}]}
    assert (await client.post("/v2/admin/routes", json=slash, headers=staff)).status_code == 422
    empty = {"name": "empty", "targets": []}
    assert (await client.post("/v2/admin/routes", json=empty, headers=staff)).status_code == 422

    good = {"name": "chat", "targets": [{"provider": "openai", "model": "gpt-4o"}]}
    created = await client.post("/v2/admin/routes", json=good, headers=staff)
    assert created.status_code == 201
    duplicate = await client.post("/v2/admin/routes", json=good, headers=staff)
    assert duplicate.status_code == 409
    route_id = created.json()["id"]
    invalid = await client.patch(
        f"/v2/admin/routes/{route_id}",
        json={"targets": [{"provider": "nope", "model": "x"}]},
        headers=staff,
    )
    assert invalid.status_code == 400
    updated = await client.patch(
        f"/v2/admin/routes/{route_id}", json={"cache_ttl_seconds": 60}, headers=staff
    )
    assert updated.json()["cache_ttl_seconds"] == 60
    assert (await client.delete(f"/v2/admin/routes/{route_id}", headers=staff)).status_code == 204
    async with database.sessions() as session:
        entries = (
            await session.execute(
                select(AuditLogEntry)
                .where(AuditLogEntry.entity_type == "route")
                .order_by(AuditLogEntry.id)
            )
        ).scalars()
        assert [(e.action, e.changed_fields) for e in entries][1:] == [
            ("update", ["cache_ttl_seconds"]),
            ("delete", []),
        ]
    user = bearer(await make_token(database, await make_user(database, "plain@example.com")))
    assert (await client.get("/v2/admin/routes", headers=user)).status_code == 403
