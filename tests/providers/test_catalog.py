"""The model catalog: seeded prices, and only models the caller can use unless all=true."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.providers.kinds import ProviderKind
from tests.helpers import bearer, make_token, make_user


@pytest.fixture
async def token(database: Database) -> str:
    return await make_token(database, await make_user(database, "cat@example.com"))


async def test_seeded_prices(client: httpx.AsyncClient, token: str) -> None:
    models = (await client.get("/v2/llm-models/?all=true", headers=bearer(token))).json()
    by_id = {model["model_id"]: model for model in models}
    expected = {
        "claude-sonnet-4-5": (3.00, 15.00),
        "claude-opus-4-6": (15.00, 75.00),
        "claude-haiku-4-5": (0.80, 4.00),
    }
    for model_id, (price_in, price_out) in expected.items():
        model = by_id[model_id]
        assert (model["input_price_per_million"], model["output_price_per_million"]) == (
            price_in,
            price_out,
        )
        assert model["provider_kind"] == "anthropic" and model["context_length"] == 200000
    kinds = {model["provider_kind"] for model in models}
    assert {"openai", "anthropic", "google", "groq", "huggingface", "local"} <= kinds


async def test_only_usable_models_unless_all(
    client: httpx.AsyncClient, token: str, app: FastAPI
) -> None:
    usable = (await client.get("/v2/llm-models/", headers=bearer(token))).json()
    assert {model["provider_kind"] for model in usable} == {"local"}
    assert all(model["usable"] for model in usable)

    await client.patch(
        "/v2/users/me/api-key",
        json={"provider": "groq", "api_key": "gsk_catalog_0000000"},
        headers=bearer(token),
    )
    app.state.modelyard.system_keys[ProviderKind.ANTHROPIC] = ["sk-ant-system-000000000000"]
    usable = (await client.get("/v2/llm-models/", headers=bearer(token))).json()
    assert {model["provider_kind"] for model in usable} == {"local", "groq", "anthropic"}

    everything = (await client.get("/v2/llm-models/?all=true", headers=bearer(token))).json()
    unusable = [model for model in everything if not model["usable"]]
    assert {model["provider_kind"] for model in unusable} == {"openai", "google", "huggingface"}

    embeddings = (await client.get("/v2/llm-models/?task=embedding", headers=bearer(token))).json()
    assert [model["model_id"] for model in embeddings] == ["all-MiniLM-L6-v2"]


async def test_one_model_and_a_missing_one(client: httpx.AsyncClient, token: str) -> None:
    models = (await client.get("/v2/llm-models/?all=true", headers=bearer(token))).json()
    sonnet = next(model for model in models if model["model_id"] == "claude-sonnet-4-5")
    one = await client.get(f"/v2/llm-models/{sonnet['id']}", headers=bearer(token))
    assert one.status_code == 200 and one.json()["usable"] is False
    assert one.json()["provider_label"] == "Anthropic"
    missing = await client.get("/v2/llm-models/99999", headers=bearer(token))
    assert missing.status_code == 404
    assert (await client.get("/v2/llm-models/")).status_code == 401
