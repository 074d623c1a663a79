"""The access matrix over every API route: anonymous, a user, another user, and staff.

Anonymous callers get 401 everywhere but the public routes; regular users get 403 on the
admin API; and another user's conversation, training job, dataset, API token or key is
never visible (404), whatever the method.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.conversations.service import create_conversation
from modelyard.db.engine import Database
from modelyard.training import jobs
from modelyard.training.config import TrainingConfig
from tests.helpers import bearer, make_token, make_user
from tests.training.conftest import classification_rows, write_csv

#: Routes anyone may call.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v2/auth/login"),
    ("POST", "/v2/auth/register"),
    ("POST", "/v2/auth/logout"),
    ("GET", "/v1/models"),
}
#: Parts of the API for staff only.
STAFF_PREFIXES = ("/v2/admin", "/v2/users", "/v2/finetune")
#: Routes regular users may call under a staff prefix.
USER_UNDER_STAFF_PREFIX = ("/v2/users/me",)


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the JSON API, from its OpenAPI document."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith(("/v1", "/v2", "/train"))
    ]


def fill(path: str, ids: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return str(ids.get(name, 1))

    return re.sub(r"\{([^}]+)\}", value, path)


@pytest.fixture
async def world(
    app: FastAPI, client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> dict[str, Any]:
    """Alice owns one of everything; Bob is another user; Carol is staff."""
    alice = await make_user(database, "alice@example.com")
    bob = await make_user(database, "bob@example.com")
    carol = await make_user(database, "carol@example.com", staff=True)
    alice_auth = bearer(await make_token(database, alice, "alice-main"))
    async with database.sessions() as session:
        conversation = await create_conversation(session, user_id=alice.id, title="private")
        await session.commit()
    upload = await client.post(
        "/v2/datasets",
        headers=alice_auth,
        files={
            "file": ("d.csv", write_csv(tmp_path / "d.csv", classification_rows(20)).read_bytes())
        },
    )
    assert upload.status_code == 201, upload.text
    dataset_id = upload.json()["id"]
    async with database.sessions() as session:
        dataset = await jobs.get_dataset(session, dataset_id, None)
        job = await jobs.create_job(
            session,
            user=alice,
            dataset=dataset,
            config=TrainingConfig(task="classification"),
            settings=app.state.modelyard.settings,
        )
    token = await client.post("/v2/tokens", headers=alice_auth, json={"name": "second"})
    assert token.status_code == 201, token.text
    key = await client.patch(
        "/v2/users/me/api-key",
        headers=alice_auth,
        json={"provider": "openai", "api_key": "sk-canaryaliceskey0123456789abcdef"},
    )
    assert key.status_code == 200, key.text
    return {
        "alice": alice_auth,
        "bob": bearer(await make_token(database, bob)),
        "carol": bearer(await make_token(database, carol)),
        "ids": {
            "conversation_id": conversation.id,
            "dataset_id": dataset_id,
            "job_id": job.id,
            "token_id": token.json()["id"],
            "user_id": alice.id,
            "subject_id": alice.id,
        },
    }


async def test_anonymous_callers_get_401_except_on_public_routes(
    app: FastAPI, client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    checked = 0
    for method, path in api_routes(app):
        if (method, path) in PUBLIC:
            continue
        response = await client.request(method, fill(path, world["ids"]), json={})
        assert response.status_code == 401, (method, path, response.status_code, response.text)
        assert response.json()["error"]["type"] == "authentication_error"
        checked += 1
    assert checked > 40


async def test_regular_users_get_403_on_staff_routes(
    app: FastAPI, client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    staff_routes = [
        (method, path)
        for method, path in api_routes(app)
        if path.startswith(STAFF_PREFIXES) and not path.startswith(USER_UNDER_STAFF_PREFIX)
    ]
    assert len(staff_routes) > 10
    for method, path in staff_routes:
        response = await client.request(
            method, fill(path, world["ids"]), json={}, headers=world["bob"]
        )
        assert response.status_code == 403, (method, path, response.status_code, response.text)
        response = await client.request(
            method, fill(path, world["ids"]), json={}, headers=world["carol"]
        )
        assert response.status_code != 403, (method, path, response.text)


#: Another user's things, by every method their routes offer.
OWNED = [
    ("GET", "/v2/conversations/{conversation_id}"),
    ("GET", "/v2/conversations/{conversation_id}/messages"),
    ("GET", "/v2/conversations/{conversation_id}/export"),
    ("PATCH", "/v2/conversations/{conversation_id}"),
    ("DELETE", "/v2/conversations/{conversation_id}"),
    ("GET", "/v2/datasets/{dataset_id}"),
    ("GET", "/v2/training/jobs/{job_id}"),
    ("GET", "/v2/training/jobs/{job_id}/events"),
    ("GET", "/v2/training/jobs/{job_id}/metrics"),
    ("POST", "/v2/training/jobs/{job_id}/cancel"),
    ("POST", "/v2/training/jobs/{job_id}/push"),
    ("DELETE", "/v2/training/jobs/{job_id}"),
    ("DELETE", "/v2/tokens/{token_id}"),
]


async def test_another_users_things_are_404_and_stay_intact(
    app: FastAPI, client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    routes = set(api_routes(app))
    bodies = {"PATCH": {"title": "stolen"}, "POST": {"hf_token": None}}
    for method, path in OWNED:
        assert (method, path) in routes, f"{method} {path} is not a route any more"
        response = await client.request(
            method, fill(path, world["ids"]), json=bodies.get(method), headers=world["bob"]
        )
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert response.json()["error"]["type"] == "not_found_error"
    # Lists hold only one's own.
    for path, key in (
        ("/v2/conversations/", "items"),
        ("/v2/datasets", "data"),
        ("/v2/training/jobs", "data"),
        ("/v2/tokens", "data"),
    ):
        listed = await client.get(path, headers=world["bob"])
        assert listed.status_code == 200, (path, listed.text)
        body = listed.json()
        items = body[key] if isinstance(body, dict) else body
        assert all(item.get("name") != "second" for item in items), path
        assert len(items) <= 1 if path == "/v2/tokens" else items == [], (path, items)
    profile = (await client.get("/v2/users/me", headers=world["bob"])).json()
    assert profile["has_openai_key"] is False
    # Alice still has everything, untouched.
    alice = world["alice"]
    conversation = await client.get(
        fill("/v2/conversations/{conversation_id}", world["ids"]), headers=alice
    )
    assert conversation.status_code == 200 and conversation.json()["title"] == "private"
    job = await client.get(fill("/v2/training/jobs/{job_id}", world["ids"]), headers=alice)
    assert job.status_code == 200 and job.json()["state"] == "queued"
    tokens = (await client.get("/v2/tokens", headers=alice)).json()
    tokens = tokens["data"] if isinstance(tokens, dict) else tokens
    assert {t["name"] for t in tokens} == {"alice-main", "second"}
    assert (await client.get("/v2/users/me", headers=alice)).json()["has_openai_key"] is True
