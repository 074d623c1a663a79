"""The custom REST provider contract end to end against a fake on 127.0.0.1: the
connection test, upload, job, status polling with events, success, cancel, a failure in
the contract's error shape, and the fine-tuned model answering through the gateway."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import LlmModel, Provider
from modelyard.finetune.sync import FineTuneSync
from tests.fakes.custom_finetune import FineTuneCustom
from tests.finetune.conftest import CUSTOM_CANARY, add_provider, upload


@pytest.fixture
async def custom_provider(database: Database, fake_custom_ft: FineTuneCustom) -> int:
    return await add_provider(
        database,
        "In-house trainer",
        kind="custom",
        api_key=CUSTOM_CANARY,
        base_url=fake_custom_ft.url,
        base_model="base-small",
        is_default=True,
    )


async def test_custom_provider_end_to_end(
    client: httpx.AsyncClient,
    database: Database,
    fake_custom_ft: FineTuneCustom,
    custom_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sync: FineTuneSync,
    sdk: openai.AsyncOpenAI,
) -> None:
    tested = await client.post(
        "/v2/admin/providers/actions/test", headers=staff_headers, json={"ids": [custom_provider]}
    )
    assert tested.json()[0]["ok"] is True and "pong" in tested.json()[0]["message"]
    assert fake_custom_ft.last_request.path == "/test"

    uploaded = await upload(client, staff_headers, training_jsonl)
    assert uploaded.status_code == 201, uploaded.text
    record = uploaded.json()
    assert record["provider_kind"] == "custom" and record["remote_id"] == "cf-1"
    assert fake_custom_ft.files["cf-1"] == training_jsonl.read_bytes()  # noqa: ASYNC240

    body = {"training_file_id": record["id"], "data": {"n_epochs": 2, "suffix": "support"}}
    created = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
    assert created.status_code == 201, created.text
    command = created.json()
    assert (command["job_status"], command["remote_job_id"]) == ("queued", "ft-2")
    sent = fake_custom_ft.last_request
    assert sent.path == "/fine-tune" and sent.header("authorization") == f"Bearer {CUSTOM_CANARY}"
    assert sent.json() == {
        "training_file": "cf-1",
        "validation_file": None,
        "model": "base-small",
        "hyperparameters": {"n_epochs": 2},
        "suffix": "support",
    }

    statuses = []
    for _poll in range(2):
        await sync.tick()
        shown = await client.get(f"/v2/finetune/commands/{command['id']}", headers=staff_headers)
        statuses.append(shown.json()["job_status"])
    assert statuses == ["running", "succeeded"]
    assert shown.json()["fine_tuned_model"] == "custom:support:ft-2"
    events = await client.get(
        f"/v2/finetune/commands/{command['id']}/events", headers=staff_headers
    )
    assert [e["message"] for e in events.json()["data"]] == [
        "job created for base-small",
        "status running",
        "model custom:support:ft-2 ready",
    ]
    async with database.sessions() as session:
        provider = await session.get(Provider, custom_provider)
        assert provider is not None and provider.fine_tuned_model_id == "custom:support:ft-2"
        entry = await session.scalar(
            select(LlmModel).where(LlmModel.model_id == "custom:support:ft-2")
        )
        assert entry is not None and entry.provider_kind == "custom"

    answer = await sdk.chat.completions.create(
        model="custom:support:ft-2", messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content == "Echo: hello"
    chat = fake_custom_ft.last_request
    assert chat.path == "/chat/completions" and chat.json()["model"] == "custom:support:ft-2"
    assert chat.header("authorization") == f"Bearer {CUSTOM_CANARY}"


async def test_custom_cancel_and_failure(
    client: httpx.AsyncClient,
    fake_custom_ft: FineTuneCustom,
    custom_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    sync: FineTuneSync,
) -> None:
    record = (await upload(client, staff_headers, training_jsonl)).json()
    body = {"training_file_id": record["id"]}
    first = (await client.post("/v2/finetune/commands", headers=staff_headers, json=body)).json()
    cancelled = await client.post(
        f"/v2/finetune/commands/{first['id']}/cancel", headers=staff_headers
    )
    assert cancelled.status_code == 200 and cancelled.json()["job_status"] == "cancelled"
    events = await client.get(f"/v2/finetune/commands/{first['id']}/events", headers=staff_headers)
    assert events.json()["data"][-1]["message"] == "job cancelled"

    fake_custom_ft.failure = {"code": "oom", "message": "out of GPU memory", "param": None}
    second = (await client.post("/v2/finetune/commands", headers=staff_headers, json=body)).json()
    await sync.tick()
    await sync.tick()
    shown = await client.get(f"/v2/finetune/commands/{second['id']}", headers=staff_headers)
    assert shown.json()["job_status"] == "failed"
    assert shown.json()["error"] == {
        "status": None,
        "code": "oom",
        "message": "out of GPU memory",
        "param": None,
    }

    fake_custom_ft.files.clear()
    refused = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_file"
    assert refused.json()["error"]["param"] == "training_file"

    fake_custom_ft.keys = set()
    rejected = await client.post(
        f"/v2/finetune/commands/{second['id']}/refresh", headers=staff_headers
    )
    assert rejected.status_code == 502
    message = rejected.json()["error"]["message"]
    assert "invalid token ****" in message and CUSTOM_CANARY not in message
    shown = await client.get(f"/v2/finetune/commands/{second['id']}", headers=staff_headers)
    assert "invalid token ****" in shown.json()["sync_error"]
