"""Fixtures for provider fine-tuning: fake OpenAI and custom servers that fine-tune, an
admin provider pointing at them (with a canary key), a staff account, and helpers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.db.models import User
from modelyard.finetune.sync import FineTuneSync, finetune_sync
from modelyard.providers import records
from tests.fakes.custom_finetune import FineTuneCustom
from tests.fakes.openai_finetune import FineTuneOpenAI
from tests.helpers import bearer, make_token, make_user

#: The fake accepts this key; no response, log line or record may ever show it.
CANARY_KEY = "sk-canary-finetune-0123456789abcdef"
CUSTOM_CANARY = "sk-canary-custom-0123456789abcdef"
BASE_MODEL = "gpt-4o-mini-2024-07-18"


def chat_example(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You answer support questions briefly."},
            {"role": "user", "content": f"Question {number}: where is my order?"},
            {"role": "assistant", "content": f"Answer {number}: it ships tomorrow."},
        ],
        **extra,
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def training_jsonl(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "support.jsonl", [chat_example(i) for i in range(12)])


@pytest.fixture
def fake_ft() -> Iterator[FineTuneOpenAI]:
    models = ["gpt-4o-mini", BASE_MODEL]
    with FineTuneOpenAI(keys={CANARY_KEY}, models=models) as fake:
        yield fake


@pytest.fixture
def fake_custom_ft() -> Iterator[FineTuneCustom]:
    with FineTuneCustom(keys={CUSTOM_CANARY}, models=["base-small"]) as fake:
        yield fake


async def add_provider(database: Database, name: str, **values: Any) -> int:
    async with database.sessions() as session:
        provider = await records.create_provider(
            session, actor=None, values={"name": name, "kind": "openai", **values}
        )
        return provider.id


@pytest.fixture
async def openai_provider(database: Database, fake_ft: FineTuneOpenAI) -> int:
    return await add_provider(
        database,
        "Fine-tuning OpenAI",
        api_key=CANARY_KEY,
        base_url=fake_ft.base_url,
        base_model=BASE_MODEL,
        is_default=True,
    )


@pytest.fixture
async def staff(database: Database) -> User:
    return await make_user(database, "ops@example.com", staff=True)


@pytest.fixture
async def staff_headers(database: Database, staff: User) -> dict[str, str]:
    return bearer(await make_token(database, staff))


@pytest.fixture
def sync(app: FastAPI) -> FineTuneSync:
    return finetune_sync(app)


@pytest.fixture
async def sdk(app: FastAPI, staff_headers: dict[str, str]) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK, as a client of the app, with the staff account's token."""
    from tests.conftest import refuse_canaries

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as http:
        token = staff_headers["Authorization"].removeprefix("Bearer ")
        yield openai.AsyncOpenAI(
            base_url="http://testserver/v1", api_key=token, http_client=http, max_retries=0
        )


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], path: Path, name: str | None = None
) -> httpx.Response:
    with path.open("rb") as handle:
        return await client.post(
            "/v2/finetune/files",
            headers=headers,
            files={"file": (name or path.name, handle, "application/jsonl")},
        )
