"""GET /v1/models and GET /v1/models/{id} with the openai SDK: every name a caller may use
(routes, catalog, admin-provider, trained and built-in local models), one entry per id,
each a valid OpenAI ``Model``; another user's private model is a 404 like a missing one."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelyard.db.engine import Database
from modelyard.db.models import TrainedModel
from modelyard.providers import records
from tests.fakes.fixtures import ANTHROPIC_KEY, OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.model_list.conftest import Caller, add_route
from tests.openai_spec import assert_valid

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
MINILM = "local/all-MiniLM-L6-v2"


async def listed(caller: Caller) -> dict[str, dict[str, Any]]:
    """The caller's list by id, checked against OpenAI's spec and parsed by the SDK."""
    raw = await caller.sdk.models.with_raw_response.list()
    body = raw.http_response.json()
    assert_valid("ListModelsResponse", body)
    ids = [entry["id"] for entry in body["data"]]
    assert len(ids) == len(set(ids)), "an id is listed twice"
    assert [model.id for model in raw.parse().data] == ids
    return {entry["id"]: entry for entry in body["data"]}


async def retrieved(caller: Caller, name: str) -> dict[str, Any]:
    raw = await caller.sdk.models.with_raw_response.retrieve(name)
    body: dict[str, Any] = raw.http_response.json()
    assert_valid("Model", body)
    assert raw.parse().id == name
    return body


async def refused(caller: Caller, name: str) -> dict[str, Any]:
    """The 404 body for ``name``, with the name itself blanked out."""
    with pytest.raises(openai.NotFoundError) as missing:
        await caller.sdk.models.retrieve(name)
    body: dict[str, Any] = missing.value.response.json()
    assert_valid("ErrorResponse", body)
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["type"] == "not_found_error"
    return {**body["error"], "message": body["error"]["message"].replace(name, "NAME")}


@pytest.mark.usefixtures("openai_provider")
async def test_a_route_is_listed_and_answers_to_its_listed_id(
    http: httpx.AsyncClient, staff: dict[str, str], alice: Caller, upstream: ChatOpenAI
) -> None:
    targets = [
        {"provider": "anthropic", "model": "claude-haiku-4-5"},  # no Anthropic key: skipped
        {"provider": "openai", "model": "gpt-4o-mini"},
    ]
    await add_route(http, staff, "team-chat", targets)
    route = (await listed(alice))["team-chat"]
    assert isinstance(route.pop("created"), int)
    assert route == {
        "id": "team-chat",
        "object": "model",
        "owned_by": "modelyard",
        "name": "team-chat",
        "kind": "chat",
        "context_length": 128000,  # its one reachable target's, from the catalog
        "pricing": {"input_per_million": "0.15", "output_per_million": "0.6"},
        "source": "route",
        "vision": True,  # its first target's: claude-haiku-4-5 takes images
    }
    assert (await retrieved(alice, "team-chat"))["source"] == "route"
    answer = await alice.sdk.chat.completions.create(model="team-chat", messages=HELLO)
    assert answer.choices[0].message.content == "Echo: hello there"
    assert upstream.last_request.json()["model"] == "gpt-4o-mini"


async def test_a_route_is_listed_only_for_callers_who_can_reach_a_target(
    http: httpx.AsyncClient, staff: dict[str, str], alice: Caller, bob: Caller
) -> None:
    await add_route(http, staff, "claude", [{"provider": "anthropic", "model": "claude-haiku-4-5"}])
    assert "claude" not in await listed(alice)
    own_key = await http.patch(
        "/v2/users/me/api-key",
        json={"provider": "anthropic", "api_key": ANTHROPIC_KEY},
        headers=alice.headers,
    )
    assert own_key.status_code == 200, own_key.text
    assert (await listed(alice))["claude"]["pricing"] == {
        "input_per_million": "0.8",
        "output_per_million": "4",
    }
    assert "claude" not in await listed(bob)
    assert await refused(bob, "claude") == await refused(bob, "no-such-route")


async def test_admin_provider_base_and_fine_tuned_models_are_listed(
    database: Database, alice: Caller, upstream: ChatOpenAI
) -> None:
    fine_tuned = "ft:gpt-4o-mini-2024-07-18:acme::abc123"
    upstream.models.append(fine_tuned)  # the fine-tuned model exists at OpenAI
    async with database.sessions() as session:
        for name, values in (
            ("tuned", {"base_model": "gpt-4o-mini", "fine_tuned_model_id": fine_tuned}),
            ("house", {"base_model": "acme-house-1"}),
        ):
            await records.create_provider(
                session,
                actor=None,
                values={
                    "name": name,
                    "kind": "openai",
                    "api_key": OPENAI_KEY,
                    "base_url": upstream.base_url,
                    **values,
                },
            )
    models = await listed(alice)
    assert models["gpt-4o-mini"]["source"] == "catalog"  # a base model in the catalog: once
    for name in (fine_tuned, "acme-house-1"):
        assert models[name]["source"] == "provider", name
        assert models[name]["owned_by"] == "openai" and models[name]["kind"] == "chat"
        assert (await retrieved(alice, name))["id"] == name
    # Not in the catalog and no default price for OpenAI: metering has no price either.
    assert models[fine_tuned]["pricing"] is None
    assert models["acme-house-1"]["pricing"] is None
    answer = await alice.sdk.chat.completions.create(model=fine_tuned, messages=HELLO)
    assert answer.choices[0].message.content == "Echo: hello there"
    assert upstream.last_request.json()["model"] == fine_tuned


async def test_a_private_trained_model_is_its_owners_alone(
    database: Database, alice: Caller, bob: Caller
) -> None:
    async with database.sessions() as session:
        model = TrainedModel(
            owner_id=alice.user.id,
            name="secret-clf",
            visibility="private",
            task="classification",
            base_model="all-MiniLM-L6-v2",
            path="models/alice/secret-clf",
        )
        session.add(model)
        await session.commit()
    mine = (await listed(alice))["local/secret-clf"]
    assert (mine["source"], mine["kind"]) == ("trained", "classification")
    assert mine["owned_by"] == "local"
    assert mine["pricing"] == {"input_per_million": "0", "output_per_million": "0"}
    assert await retrieved(alice, "local/secret-clf") == mine
    assert "local/secret-clf" not in await listed(bob)
    foreign = await refused(bob, "local/secret-clf")
    assert foreign == await refused(bob, "local/no-such-model-xyz")
    assert "GET /v1/models lists the models you can use" in foreign["message"]

    async with database.sessions() as session:
        shared = await session.get(TrainedModel, model.id)
        assert shared is not None
        shared.visibility = "everyone"
        await session.commit()
    assert (await retrieved(bob, "local/secret-clf"))["source"] == "trained"


async def test_without_any_key_the_local_models_are_listed(bob: Caller) -> None:
    models = await listed(bob)
    assert {entry["owned_by"] for entry in models.values()} == {"local"}
    minilm = models[MINILM]
    assert (minilm["kind"], minilm["source"]) == ("embedding", "local")
    assert minilm["context_length"] == 256
    assert minilm["name"] == "MiniLM L6 v2 (local embeddings)"  # the catalog's words for it
    assert minilm["pricing"] == {"input_per_million": "0", "output_per_million": "0"}
    alias = "local/sentence-transformers/all-MiniLM-L6-v2"
    assert alias not in models  # one entry per model; its other names are answered, not listed
    assert {**await retrieved(bob, alias), "id": MINILM} == minilm
    assert (await retrieved(bob, "all-MiniLM-L6-v2"))["kind"] == "embedding"


@pytest.mark.usefixtures("openai_provider")
async def test_kinds_and_provider_prefixed_names(alice: Caller) -> None:
    models = await listed(alice)
    assert models["text-embedding-3-small"]["kind"] == "embedding"
    assert models["gpt-4o"]["kind"] == "chat"
    assert "openai/gpt-4o" not in models
    prefixed = await retrieved(alice, "openai/gpt-4o")
    assert {**prefixed, "id": "gpt-4o"} == models["gpt-4o"]
    assert prefixed["pricing"] == {"input_per_million": "2.5", "output_per_million": "10"}
    # Named but not listed: not vouched for (chat may still try it), nor a locked model.
    assert await refused(alice, "openai/gpt-unlisted") == await refused(alice, "nothing-here")
    assert await refused(alice, "claude-sonnet-4-5") == await refused(alice, "nothing-here")


@pytest.mark.usefixtures("openai_provider")
async def test_a_route_shadowing_a_catalog_name_leaves_the_model_under_its_kind(
    http: httpx.AsyncClient, staff: dict[str, str], alice: Caller, upstream: ChatOpenAI
) -> None:
    await add_route(http, staff, "gpt-4o", [{"provider": "openai", "model": "gpt-4o-mini"}])
    models = await listed(alice)
    assert models["gpt-4o"]["source"] == "route"
    assert models["openai/gpt-4o"]["source"] == "catalog"
    await alice.sdk.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert upstream.last_request.json()["model"] == "gpt-4o-mini"
    await alice.sdk.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    assert upstream.last_request.json()["model"] == "gpt-4o"


async def test_listing_needs_a_caller(http: httpx.AsyncClient) -> None:
    for path in ("/v1/models", f"/v1/models/{MINILM}"):
        response = await http.get(path)
        assert response.status_code == 401, path
        assert_valid("ErrorResponse", response.json())
