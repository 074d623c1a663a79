"""A user's own provider keys: format checks, encryption at rest, write-only flags."""

from __future__ import annotations

import httpx
import pytest

from modelyard.db.engine import Database
from tests.helpers import bearer, make_token, make_user

CANARIES = {
    "openai": "sk-proj-canary-user-0123456789abcdef",
    "anthropic": "sk-ant-api03-canary-user-0123456789",
    "google": "AIzaSy-canary-user-0123456789abcdefgh",
    "groq": "gsk_canary_user_0123456789abcdef",
    "huggingface": "hf_canaryuser0123456789abcdef",
}


@pytest.fixture
async def token(database: Database) -> str:
    return await make_token(database, await make_user(database, "keys@example.com"))


async def test_keys_are_write_only_and_encrypted(
    client: httpx.AsyncClient, database: Database, token: str
) -> None:
    profile = (await client.get("/v2/users/me", headers=bearer(token))).json()
    assert not any(profile[f"has_{kind}_key"] for kind in CANARIES)
    for kind, key in CANARIES.items():
        response = await client.patch(
            "/v2/users/me/api-key", json={"provider": kind, "api_key": key}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        assert response.json()[f"has_{kind}_key"] is True
    profile = (await client.get("/v2/users/me", headers=bearer(token))).json()
    assert all(profile[f"has_{kind}_key"] for kind in CANARIES)

    async with database.engine.connect() as connection:
        rows = (await connection.exec_driver_sql("SELECT api_key FROM user_provider_keys")).all()
    assert len(rows) == len(CANARIES)
    for (stored,) in rows:
        assert stored.startswith("gAAAA")
        assert all(key not in stored for key in CANARIES.values())


async def test_replacing_and_removing_a_key(client: httpx.AsyncClient, token: str) -> None:
    for key in ("gsk_first-key-0000", "gsk_second-key-000"):
        response = await client.patch(
            "/v2/users/me/api-key", json={"provider": "groq", "api_key": key}, headers=bearer(token)
        )
        assert response.status_code == 200
    removed = await client.delete("/v2/users/me/api-key?provider=groq", headers=bearer(token))
    assert removed.status_code == 204
    assert (await client.get("/v2/users/me", headers=bearer(token))).json()["has_groq_key"] is False
    again = await client.delete("/v2/users/me/api-key?provider=groq", headers=bearer(token))
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("provider", "key", "message"),
    [
        ("huggingface", "xx_0123456789abcdefghijkl", 'HuggingFace token should start with "hf_"'),
        ("huggingface", "hf_short", "HuggingFace token seems too short"),
        ("groq", "gsk_1234", "Groq API key seems too short"),
        ("groq", "sk-0123456789abcdef", 'Groq API key should start with "gsk_"'),
        ("anthropic", "sk-0123456789abcdefghijkl", 'should start with "sk-ant-"'),
        ("openai", "pk-0123456789abcdefghijkl", 'should start with "sk-"'),
        ("openai", "sk-0123 456789abcdefghijkl", "must not contain spaces"),
        ("mistral", "whatever-0123456789", "Unknown provider 'mistral'"),
        ("local", "whatever-0123456789", "Unknown provider 'local'"),
    ],
)
async def test_malformed_keys_are_refused_with_a_clear_message(
    client: httpx.AsyncClient, token: str, provider: str, key: str, message: str
) -> None:
    response = await client.patch(
        "/v2/users/me/api-key", json={"provider": provider, "api_key": key}, headers=bearer(token)
    )
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert key not in response.text
    profile = (await client.get("/v2/users/me", headers=bearer(token))).json()
    assert not any(value for name, value in profile.items() if name.endswith("_key"))


async def test_keys_belong_to_their_user(
    client: httpx.AsyncClient, database: Database, token: str
) -> None:
    other = await make_token(database, await make_user(database, "other@example.com"))
    await client.patch(
        "/v2/users/me/api-key",
        json={"provider": "openai", "api_key": CANARIES["openai"]},
        headers=bearer(token),
    )
    assert (await client.get("/v2/users/me", headers=bearer(other))).json()[
        "has_openai_key"
    ] is False
    gone = await client.delete("/v2/users/me/api-key?provider=openai", headers=bearer(other))
    assert gone.status_code == 404
    assert (await client.get("/v2/users/me", headers=bearer(token))).json()["has_openai_key"]
