"""``modelyard finetune``, run as an operator would, against a fake OpenAI on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.providers import records
from tests.cli_helpers import invoke, isolate_cli
from tests.fakes.openai_finetune import FineTuneOpenAI
from tests.finetune.conftest import BASE_MODEL, CANARY_KEY, chat_example, write_jsonl


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_cli(tmp_path, monkeypatch, migrate=True)


def add_provider(data_dir: Path, base_url: str, api_key: str) -> None:
    async def create() -> None:
        database = create_database(Settings(data_dir=data_dir, _env_file=None))  # type: ignore[call-arg]
        async with database.sessions() as session:
            await records.create_provider(
                session,
                actor=None,
                values={
                    "name": "Main",
                    "kind": "openai",
                    "api_key": api_key,
                    "base_url": base_url,
                    "base_model": BASE_MODEL,
                    "is_default": True,
                },
            )
        await database.dispose()

    asyncio.run(create())


def test_no_provider_then_the_whole_flow(
    data_dir: Path, tmp_path: Path, fake_ft: FineTuneOpenAI
) -> None:
    data = write_jsonl(tmp_path / "support.jsonl", [chat_example(i) for i in range(10)])
    code, output = invoke("finetune", "files", "upload", str(data))
    assert code == 1 and "No active AI provider configured" in output

    add_provider(data_dir, fake_ft.base_url, CANARY_KEY)
    bad = write_jsonl(tmp_path / "bad.jsonl", [chat_example(1, extra=1)] * 10)
    code, output = invoke("finetune", "files", "upload", str(bad))
    assert code == 1 and "line 1: unknown key(s) 'extra'" in output and "line 2:" in output
    assert fake_ft.requests == []

    code, output = invoke("finetune", "files", "upload", str(data))
    assert code == 0, output
    assert "Training file 1: 10 examples uploaded to Main as file-fake0001 (processed)" in output
    code, output = invoke("finetune", "files", "list")
    assert code == 0 and "support.jsonl" in output and "file-fake0001" in output

    code, output = invoke("finetune", "run", "--file", "1", "--epochs", "0")
    assert code == 2 and "n_epochs" in output
    code, output = invoke("finetune", "run", "--file", "1", "--epochs", "2", "--suffix", "cli")
    assert code == 0, output
    assert "Command 1 (create): done on Main" in output
    job_id = next(iter(fake_ft.jobs))
    assert f"Job {job_id}: validating_files" in output
    assert fake_ft.jobs[job_id].body["hyperparameters"] == {"n_epochs": 2}

    for expected in ("queued", "running", "running"):
        code, output = invoke("finetune", "status", "1")
        assert code == 0 and f"Job {job_id}: {expected}" in output, output
    code, output = invoke("finetune", "status", "1")
    model = f"ft:{BASE_MODEL}:modelyard-test:cli:{job_id[-8:]}"
    assert f"Fine-tuned model: {model}" in output
    code, output = invoke("finetune", "status", "1", "--no-refresh")
    assert code == 0 and "succeeded" in output
    code, output = invoke("finetune", "events", "1")
    assert code == 0 and "The job has successfully completed" in output
    assert output.index("Validating training file") < output.index("successfully completed")
    code, output = invoke("finetune", "cancel", "1")
    assert code == 1 and "has succeeded already" in output
    code, output = invoke("finetune", "list")
    assert code == 0 and "create" in output and model[:20] in output
    code, output = invoke("finetune", "files", "delete", "1")
    assert code == 0 and fake_ft.files == {}
    assert CANARY_KEY not in output


def test_cancel_and_a_rejected_key(data_dir: Path, tmp_path: Path, fake_ft: FineTuneOpenAI) -> None:
    add_provider(data_dir, fake_ft.base_url, CANARY_KEY)
    data = write_jsonl(tmp_path / "support.jsonl", [chat_example(i) for i in range(10)])
    assert invoke("finetune", "files", "upload", str(data))[0] == 0
    assert invoke("finetune", "run", "--file", "1")[0] == 0
    code, output = invoke("finetune", "cancel", "1")
    assert code == 0 and "cancelled" in output
    fake_ft.keys = set()
    code, output = invoke("finetune", "run", "--file", "1")
    assert code == 1 and "answered HTTP 401 (invalid_api_key)" in output
    assert CANARY_KEY not in output and "****" in output
    code, output = invoke("finetune", "list")
    assert "failed" in output and "invalid_api_key" in output
