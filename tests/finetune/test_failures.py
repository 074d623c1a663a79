"""What goes wrong, and how it is shown: staff only, no provider, a bad file (line
numbers, nothing sent), bad command data, and the provider's own failures (a bad key,
quota, an invalid file, a timeout) stored on the command with its code and message,
never the key."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from modelyard.db.engine import Database
from modelyard.db.models import FineTuneCommand, FineTuneFile
from tests.fakes import closed_port
from tests.fakes.openai_finetune import FineTuneOpenAI
from tests.finetune.conftest import (
    CANARY_KEY,
    add_provider,
    chat_example,
    upload,
    write_jsonl,
)
from tests.helpers import bearer, make_token, make_user

WRONG_KEY = "sk-wrong-canary-0123456789abcdef"


async def _count(database: Database, model: type[FineTuneFile] | type[FineTuneCommand]) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _uploaded_file(
    client: httpx.AsyncClient, headers: dict[str, str], path: Path
) -> dict[str, object]:
    response = await upload(client, headers, path)
    assert response.status_code == 201, response.text
    record: dict[str, object] = response.json()
    return record


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/finetune/files"),
        ("POST", "/v2/finetune/files"),
        ("GET", "/v2/finetune/files/1"),
        ("DELETE", "/v2/finetune/files/1"),
        ("GET", "/v2/finetune/commands"),
        ("POST", "/v2/finetune/commands"),
        ("GET", "/v2/finetune/commands/1"),
        ("POST", "/v2/finetune/commands/1/run"),
        ("POST", "/v2/finetune/commands/1/refresh"),
        ("POST", "/v2/finetune/commands/1/cancel"),
        ("GET", "/v2/finetune/commands/1/events"),
    ],
)
async def test_staff_only(
    client: httpx.AsyncClient, database: Database, method: str, path: str
) -> None:
    assert (await client.request(method, path)).status_code == 401
    user = await make_user(database, "someone@example.com")
    response = await client.request(method, path, headers=bearer(await make_token(database, user)))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "staff_only"


async def test_no_active_provider_says_what_to_do(
    client: httpx.AsyncClient,
    database: Database,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    fake_ft: FineTuneOpenAI,
) -> None:
    await add_provider(
        database, "Off", api_key=CANARY_KEY, base_url=fake_ft.base_url, is_active=False
    )
    response = await upload(client, staff_headers, training_jsonl)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "no_active_provider"
    assert "No active AI provider configured" in error["message"]
    assert "/admin" in error["message"] and "POST /v2/admin/providers" in error["message"]
    body = {"type": "create", "training_file_id": 1}
    created = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
    assert created.status_code == 409
    assert fake_ft.requests == []
    assert await _count(database, FineTuneFile) == 0
    assert await _count(database, FineTuneCommand) == 0


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [chat_example(i) for i in range(11)]
            + [{"messages": [{"role": "robot", "content": "hi"}]}],
            "line 12: message 1 has role 'robot'; roles are system, user, assistant, tool",
        ),
        (
            [chat_example(i) for i in range(4)]
            + [chat_example(5, prompt="x")]
            + [chat_example(i) for i in range(7)],
            "line 5: unknown key(s) 'prompt'",
        ),
        (
            [chat_example(i) for i in range(2)]
            + [{"messages": [{"role": "user", "content": "only a question"}]}]
            + [chat_example(i) for i in range(9)],
            "line 3: no assistant message",
        ),
        (
            [chat_example(i) for i in range(6)]
            + [{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}]
            + [chat_example(i) for i in range(6)],
            "line 7: message 1 (user) has no content",
        ),
        (
            [chat_example(i) for i in range(10)]
            + [
                {
                    "messages": [
                        {"role": "user", "content": "q", "colour": "red"},
                        {"role": "assistant", "content": "a"},
                    ]
                }
            ],
            "line 11: message 1 has unknown key(s) 'colour'",
        ),
        ([chat_example(i) for i in range(9)], "too few examples: 9; OpenAI needs at least 10"),
    ],
)
async def test_a_bad_file_is_refused_by_line_before_anything_is_sent(
    client: httpx.AsyncClient,
    database: Database,
    settings: object,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    tmp_path: Path,
    rows: list[object],
    expected: str,
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    response = await upload(client, staff_headers, path)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_dataset" and expected in error["message"]
    assert any(
        expected.startswith(f"{i['where']}: ") or i["where"] is None for i in error["issues"]
    )
    assert fake_ft.requests == []
    assert await _count(database, FineTuneFile) == 0
    staging = tmp_path / "finetune"
    assert not staging.exists() or list(staging.iterdir()) == []


async def test_bad_json_lines_and_file_type_and_size(
    app: FastAPI,
    client: httpx.AsyncClient,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.jsonl"
    lines = [*(f'{{"messages": {i}' for i in range(2)), ""]
    broken.write_text("\n".join(lines), encoding="utf-8")
    response = await upload(client, staff_headers, broken)
    issues = response.json()["error"]["issues"]
    assert [issue["where"] for issue in issues] == ["line 1", "line 2"]
    assert "bad JSON" in issues[0]["message"]

    wrong_type = await upload(client, staff_headers, training_jsonl, name="data.csv")
    assert wrong_type.status_code == 400 and ".jsonl" in wrong_type.json()["error"]["message"]

    app.state.modelyard.settings.finetune_max_file_bytes = 1024
    too_big = await upload(client, staff_headers, training_jsonl)
    assert too_big.status_code == 400
    assert "at most 1024 bytes" in too_big.json()["error"]["message"]
    assert fake_ft.requests == []


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"n_epochs": 0}, "data.n_epochs"),
        ({"epochs": 3}, "data.epochs"),
        ({"learning_rate_multiplier": -1}, "data.learning_rate_multiplier"),
        ({"suffix": "no spaces allowed"}, "data.suffix"),
        ({"batch_size": "big"}, "data.batch_size"),
        ({"seed": -5}, "data.seed"),
    ],
)
async def test_command_data_is_validated(
    client: httpx.AsyncClient,
    database: Database,
    openai_provider: int,
    staff_headers: dict[str, str],
    data: dict[str, object],
    where: str,
) -> None:
    body = {"type": "create", "training_file_id": 1, "data": data}
    response = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"].startswith(where)
    assert await _count(database, FineTuneCommand) == 0


async def test_command_shapes(
    client: httpx.AsyncClient, openai_provider: int, staff_headers: dict[str, str]
) -> None:
    for body, message in (
        ({"type": "create"}, "needs training_file_id"),
        ({"type": "cancel"}, "needs job_command_id"),
        ({"type": "refresh", "job_command_id": 1, "model": "x"}, "job_command_id only"),
        ({"type": "train", "training_file_id": 1}, "type"),
    ):
        response = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
        assert response.status_code == 422 and message in response.json()["error"]["message"]
    missing = await client.post(
        "/v2/finetune/commands", headers=staff_headers, json={"training_file_id": 99}
    )
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "file_not_found"
    unknown = await client.post(
        "/v2/finetune/commands",
        headers=staff_headers,
        json={"type": "refresh", "job_command_id": 5},
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "not_a_job"


async def test_a_rejected_key_is_kept_on_the_command_masked_and_can_be_fixed(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    record = await _uploaded_file(client, staff_headers, training_jsonl)
    patched = await client.patch(
        f"/v2/admin/providers/{openai_provider}",
        headers=staff_headers,
        json={"api_key": WRONG_KEY},
    )
    assert patched.status_code == 200
    body = {"training_file_id": record["id"], "data": {"suffix": "bad-key"}}
    response = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["provider_status"] == 401
    assert "Incorrect API key provided: ****" in error["message"]
    assert "check or replace the key in /admin" in error["message"]
    command_id = error["command_id"]

    shown = await client.get(f"/v2/finetune/commands/{command_id}", headers=staff_headers)
    command = shown.json()
    assert command["state"] == "failed" and command["remote_job_id"] is None
    assert command["error"]["status"] == 401 and command["error"]["code"] == "invalid_api_key"
    assert command["error"]["message"].startswith("Incorrect API key provided: ****.")
    async with database.sessions() as session:
        stored = await session.get(FineTuneCommand, command_id)
        assert stored is not None and WRONG_KEY not in repr(stored.__dict__)
    assert WRONG_KEY not in caplog.text and CANARY_KEY not in caplog.text

    await client.patch(
        f"/v2/admin/providers/{openai_provider}",
        headers=staff_headers,
        json={"api_key": CANARY_KEY},
    )
    rerun = await client.post(f"/v2/finetune/commands/{command_id}/run", headers=staff_headers)
    assert rerun.status_code == 200, rerun.text
    assert rerun.json()["state"] == "done" and rerun.json()["error"] is None
    assert rerun.json()["remote_job_id"] in fake_ft.jobs


async def test_quota_and_invalid_file_errors_are_stored(
    client: httpx.AsyncClient,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
) -> None:
    record = await _uploaded_file(client, staff_headers, training_jsonl)
    quota = {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing "
            "details.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    fake_ft.fail_with(429, quota)
    body = {"training_file_id": record["id"]}
    response = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
    assert response.status_code == 429  # as the gateway answers an upstream 429
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert (error["code"], error["provider_status"]) == ("insufficient_quota", 429)
    assert "rate limit or quota" in error["message"]
    shown = await client.get(f"/v2/finetune/commands/{error['command_id']}", headers=staff_headers)
    assert shown.json()["error"] == {
        "status": 429,
        "code": "insufficient_quota",
        "message": quota["error"]["message"],
        "param": None,
    }

    fake_ft.fail_with(None)
    fake_ft.invalid_files.add(str(record["remote_id"]))
    response = await client.post("/v2/finetune/commands", headers=staff_headers, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_training_file", "training_file")
    shown = await client.get(f"/v2/finetune/commands/{error['command_id']}", headers=staff_headers)
    assert shown.json()["error"]["status"] == 400
    assert "line 3 has no assistant message" in shown.json()["error"]["message"]


async def test_upload_refused_by_the_provider_leaves_nothing(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
) -> None:
    fake_ft.keys = {"sk-some-other-key-0123456789"}
    response = await upload(client, staff_headers, training_jsonl)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "****" in response.json()["error"]["message"]
    assert await _count(database, FineTuneFile) == 0


async def test_timeouts_and_unreachable_providers(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
) -> None:
    app.state.modelyard.settings.finetune_timeout_seconds = 0.3
    fake_ft.delay = 1.0
    response = await upload(client, staff_headers, training_jsonl)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_timeout"
    assert "within 0.3 s" in response.json()["error"]["message"]

    fake_ft.delay = 0
    patched = await client.patch(
        f"/v2/admin/providers/{openai_provider}",
        headers=staff_headers,
        json={"base_url": f"http://127.0.0.1:{closed_port()}/v1"},
    )
    assert patched.status_code == 200
    response = await upload(client, staff_headers, training_jsonl)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_unreachable"
    assert "check the provider's base URL" in response.json()["error"]["message"]
    assert await _count(database, FineTuneFile) == 0


async def test_runs_on_the_default_else_the_first_active_provider(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    staff_headers: dict[str, str],
    training_jsonl: Path,
) -> None:
    await add_provider(
        database,
        "Claude",
        kind="anthropic",
        api_key="sk-ant-canary-0123456789abcdef",
        is_default=True,
    )
    refused = await upload(client, staff_headers, training_jsonl)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "provider_cannot_fine_tune"
    assert "Provider 'Claude' (Anthropic) cannot fine-tune" in refused.json()["error"]["message"]

    first = await add_provider(
        database, "First", api_key=CANARY_KEY, base_url=fake_ft.base_url, base_model="gpt-4o-mini"
    )
    await add_provider(database, "Second", api_key=CANARY_KEY, base_url=fake_ft.base_url)
    async with database.sessions() as session:
        from modelyard.providers import records

        claude = await records.get_provider(session, 1)
        await records.set_active(session, actor=None, providers=[claude], active=False)
    record = await _uploaded_file(client, staff_headers, training_jsonl)
    assert record["provider_id"] == first and record["provider_name"] == "First"

    second = await client.post(
        "/v2/admin/providers/actions/set-default", headers=staff_headers, json={"ids": [3]}
    )
    assert second.status_code == 200
    moved = await client.post(
        "/v2/finetune/commands", headers=staff_headers, json={"training_file_id": record["id"]}
    )
    assert moved.status_code == 409
    assert moved.json()["error"]["code"] == "file_on_other_provider"
    assert "upload the file again" in moved.json()["error"]["message"]
    no_model = await _uploaded_file(client, staff_headers, training_jsonl)
    response = await client.post(
        "/v2/finetune/commands", headers=staff_headers, json={"training_file_id": no_model["id"]}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "missing_model"
    assert await _count(database, FineTuneCommand) == 0


async def test_delete_file_at_the_provider_then_here(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
) -> None:
    record = await _uploaded_file(client, staff_headers, training_jsonl)
    listed = await client.get("/v2/finetune/files", headers=staff_headers)
    assert [f["id"] for f in listed.json()["data"]] == [record["id"]]
    fake_ft.fail_with(500)
    failed = await client.delete(f"/v2/finetune/files/{record['id']}", headers=staff_headers)
    assert failed.status_code == 502 and await _count(database, FineTuneFile) == 1
    fake_ft.fail_with(None)
    deleted = await client.delete(f"/v2/finetune/files/{record['id']}", headers=staff_headers)
    assert deleted.status_code == 204
    assert record["remote_id"] not in fake_ft.files
    assert (
        await client.get(f"/v2/finetune/files/{record['id']}", headers=staff_headers)
    ).status_code == 404
    second = await _uploaded_file(client, staff_headers, training_jsonl)
    fake_ft.files.clear()  # gone at the provider already: deleting here still works
    gone = await client.delete(f"/v2/finetune/files/{second['id']}", headers=staff_headers)
    assert gone.status_code == 204


async def test_a_key_echoed_in_a_job_answer_is_masked_everywhere(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    staff_headers: dict[str, str],
    training_jsonl: Path,
) -> None:
    fake_ft.steps = ("validating_files",)
    fake_ft.failure = {
        "code": "bad_auth",
        "message": f"The key {CANARY_KEY} may not fine-tune this model.",
        "param": None,
    }
    record = await _uploaded_file(client, staff_headers, training_jsonl)
    created = await client.post(
        "/v2/finetune/commands", headers=staff_headers, json={"training_file_id": record["id"]}
    )
    command_id = created.json()["id"]
    refreshed = await client.post(
        f"/v2/finetune/commands/{command_id}/refresh", headers=staff_headers
    )
    assert refreshed.status_code == 200
    job = refreshed.json()
    assert job["job_status"] == "failed"
    assert job["error"]["message"] == "The key **** may not fine-tune this model."
    assert job["result"]["error"]["message"] == "The key **** may not fine-tune this model."
    events = await client.get(f"/v2/finetune/commands/{command_id}/events", headers=staff_headers)
    assert "Fine-tuning job failed: The key **** may not" in events.text
    async with database.engine.connect() as connection:
        for table in ("finetune_commands", "finetune_events", "audit_log"):
            rows = await connection.execute(text(f"SELECT * FROM {table}"))
            assert CANARY_KEY not in repr(rows.all()), table
