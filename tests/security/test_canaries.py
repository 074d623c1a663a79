"""Canary keys at every level — environment, admin provider, user profile, training keys
step — used, refused and stored; none may ever appear in a response, an error, a log line,
the database's stored bytes, a job record or the metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.providers.kinds import ProviderKind
from tests.conftest import refuse_canaries
from tests.fakes.openai_chat import ChatGroq, ChatOpenAI
from tests.helpers import bearer, database_text, make_token, make_user
from tests.training.conftest import classification_rows, write_csv

ENV_KEY = "sk-canaryenvironmentkey0123456789abcd"
ADMIN_KEY = "gsk_canaryadminproviderkey0123456789abcdefgh"
USER_KEY = "sk-canaryuserprofilekey0123456789abcd"
WRONG_USER_KEY = "sk-canaryrefuseduserkey0123456789abcd"
DIALOG_HF = "hf_canarydialogtoken0123456789abcdefg"
DIALOG_GROQ = "gsk_canarydialoggroqkey0123456789abcdefghi"
ALL = (ENV_KEY, ADMIN_KEY, USER_KEY, WRONG_USER_KEY, DIALOG_HF, DIALOG_GROQ)


@pytest.fixture
def openai_fake(settings: Settings) -> Iterator[ChatOpenAI]:
    """User and system OpenAI keys go to the fake (``MODELYARD_PROVIDER_BASE_URLS``)."""
    with ChatOpenAI(keys={ENV_KEY, USER_KEY}) as fake:
        settings.provider_base_urls = {"openai": fake.base_url}
        yield fake


@pytest.fixture
def groq_fake() -> Iterator[ChatGroq]:
    with ChatGroq(keys={ADMIN_KEY}) as fake:
        yield fake


@pytest.fixture
async def canary_app(settings: Settings, openai_fake: ChatOpenAI) -> AsyncIterator[FastAPI]:
    app = create_app(settings, system_keys={ProviderKind.OPENAI: [ENV_KEY]})
    yield app
    await app.state.modelyard.aclose()


@pytest.fixture
async def http(canary_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=canary_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
        timeout=60,
    ) as client:
        yield client


def _chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}]}


async def test_canaries_at_every_level_never_leak(
    canary_app: FastAPI,
    http: httpx.AsyncClient,
    groq_fake: ChatGroq,
    openai_fake: ChatOpenAI,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    database: Database = canary_app.state.modelyard.database
    staff = await make_user(database, "staff@example.com", staff=True)
    staff_auth = bearer(await make_token(database, staff))
    owner = await make_user(database, "owner@example.com")
    owner_auth = bearer(await make_token(database, owner))
    refused = await make_user(database, "refused@example.com")
    refused_auth = bearer(await make_token(database, refused))
    nobody_auth = bearer(await make_token(database, await make_user(database, "n@example.com")))

    # Admin level, over the admin API (and a connection test).
    created = await http.post(
        "/v2/admin/providers",
        headers=staff_auth,
        json={"name": "groq", "kind": "groq", "api_key": ADMIN_KEY, "base_url": groq_fake.base_url},
    )
    assert created.status_code == 201, created.text
    tested = await http.post(
        "/v2/admin/providers/actions/test", headers=staff_auth, json={"ids": [created.json()["id"]]}
    )
    assert tested.status_code in (200, 400, 422), tested.text
    # User level: a good key and one the provider refuses.
    for auth, key in ((owner_auth, USER_KEY), (refused_auth, WRONG_USER_KEY)):
        response = await http.patch(
            "/v2/users/me/api-key", headers=auth, json={"provider": "openai", "api_key": key}
        )
        assert response.status_code == 200, response.text

    # Used: each level answers; the refused key fails over.
    answers = {
        "owner": await http.post(
            "/v1/chat/completions", headers=owner_auth, json=_chat("gpt-4o-mini")
        ),
        "env": await http.post(
            "/v1/chat/completions", headers=nobody_auth, json=_chat("gpt-4o-mini")
        ),
        "admin": await http.post(
            "/v1/chat/completions", headers=nobody_auth, json=_chat("llama-3.1-8b-instant")
        ),
        "refused": await http.post(
            "/v1/chat/completions", headers=refused_auth, json=_chat("gpt-4o-mini")
        ),
    }
    assert answers["owner"].status_code == 200, answers["owner"].text
    assert answers["env"].status_code == 200, answers["env"].text
    assert answers["admin"].status_code == 200, answers["admin"].text
    # The refused key was tried, logged as refused, and the next level answered.
    assert answers["refused"].status_code == 200, answers["refused"].text
    seen = {r.header("authorization") for r in openai_fake.requests}
    assert {f"Bearer {USER_KEY}", f"Bearer {ENV_KEY}", f"Bearer {WRONG_USER_KEY}"} <= seen
    assert groq_fake.requests[-1].header("authorization") == f"Bearer {ADMIN_KEY}"

    # Training keys step (the job is queued; the keys live only in the runner's memory).
    upload = await http.post(
        "/v2/datasets",
        headers=owner_auth,
        files={
            "file": ("d.csv", write_csv(tmp_path / "d.csv", classification_rows(20)).read_bytes())
        },
    )
    job = await http.post(
        "/v2/training/jobs",
        headers=owner_auth,
        json={
            "task": "classification",
            "dataset_id": upload.json()["id"],
            "keys": {"hf_token": DIALOG_HF, "groq_api_key": DIALOG_GROQ},
        },
    )
    assert job.status_code == 201, job.text
    malformed = await http.post(
        "/v2/training/jobs",
        headers=owner_auth,
        json={
            "task": "classification",
            "dataset_id": upload.json()["id"],
            "keys": {"hf_token": DIALOG_HF + " x"},
        },
    )
    assert malformed.status_code == 400

    # Everywhere a key could leak to (responses were checked by the client's hook).
    await canary_app.state.modelyard.usage.flush()
    stored = await database_text(database)
    metrics = (await http.get("/metrics")).text
    listings = [
        (await http.get(path, headers=auth)).text
        for path, auth in (
            ("/v2/admin/providers", staff_auth),
            ("/v2/admin/audit-log", staff_auth),
            ("/v2/training/jobs", owner_auth),
            ("/v2/usage", owner_auth),
            ("/v2/users/me", owner_auth),
        )
    ]
    files = b"".join(
        path.read_bytes()
        for path in settings.data_dir.resolve().rglob("*")
        if path.is_file() and path.suffix != ".db"
    )
    for key in ALL:
        assert key not in stored, f"{key[:12]}… is stored in plaintext"
        assert key not in metrics and key not in caplog.text, key[:12]
        assert all(key not in text for text in listings), key[:12]
        assert key.encode() not in files, key[:12]
