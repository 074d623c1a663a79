"""Preference tuning (DPO, ORPO) through the API on the tiny Llama, CPU, a few steps: the
job succeeds, its metrics are recorded, the merged model is saved and chats through the
gateway at once."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from transformers import AutoModelForCausalLM

from modelyard.config import Settings
from modelyard.training.runner import TrainingRunner
from tests.training.conftest import UploadFn, preference_rows, write_jsonl
from tests.training.jobs_helpers import train_timed, wait_for


@pytest.mark.parametrize(
    ("task", "method", "checkpointing"),
    [("dpo", None, False), ("orpo", None, True), ("dpo", "full", False)],
)
async def test_preference_job_trains_and_the_model_chats(
    task: str,
    method: str | None,
    checkpointing: bool,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    settings: Settings,
    tiny_llama: Path,
    tmp_path: Path,
) -> None:
    response = await upload(write_jsonl(tmp_path / "prefs.jsonl", preference_rows()), task=task)
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "preference"
    body = {
        "task": task,
        "base_model": str(tiny_llama),
        "dataset_id": response.json()["id"],
        "output_name": f"polite-{task}",
        "max_steps": 3,
        "batch_size": 4,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "beta": 0.2,
        "gradient_checkpointing": checkpointing,
        "lora": {"r": 4, "alpha": 8},
    }
    if method is not None:
        body["method"] = method
    created = await http.post("/v2/training/jobs", headers=auth, json=body)
    assert created.status_code == 201, created.text
    trained = method or "lora"  # LoRA: the task's default
    assert created.json()["config"]["method"] == trained
    job = await wait_for(http, auth, created.json()["id"])
    assert job["state"] == "succeeded", job
    metrics = job["metrics"]
    assert metrics["eval_loss"] > 0 and metrics["train_loss"] > 0
    assert 0 <= metrics["eval_reward_accuracy"] <= 1 and "eval_reward_margin" in metrics
    assert not any("/" in name for name in metrics)

    (directory,) = (settings.data_dir.resolve() / "models").glob(f"u*/polite-{task}")
    card = json.loads((directory / "modelyard.json").read_text())
    assert card["task"] == task and card["dataset"]["kind"] == "preference"
    assert card["extra"]["method"] == trained and card["extra"]["beta"] == 0.2
    assert card["hyperparameters"]["gradient_checkpointing"] is checkpointing
    assert not (directory / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(directory)
    assert not any("lora" in name for name, _ in merged.named_parameters())

    chat = await http.post(
        "/v1/chat/completions",
        headers=auth,
        json={
            "model": f"local/polite-{task}",
            "messages": [{"role": "user", "content": "say hello"}],
            "max_tokens": 4,
            "temperature": 0,
        },
    )
    assert chat.status_code == 200, chat.text
    answer = chat.json()
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert answer["usage"]["completion_tokens"] >= 1


def _issues(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_dataset" and error["param"] == "file"
    return [
        f"{i['where']}: {i['message']}" if i["where"] else i["message"] for i in error["issues"]
    ]


async def test_a_preference_file_is_recognised_without_a_task(
    upload: UploadFn, tmp_path: Path
) -> None:
    response = await upload(write_jsonl(tmp_path / "prefs.jsonl", preference_rows(12)))
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "preference"
    assert response.json()["num_examples"] == 12


async def test_a_preference_file_missing_a_column_is_refused(
    upload: UploadFn, tmp_path: Path
) -> None:
    rows = [{"prompt": r["prompt"], "chosen": r["chosen"]} for r in preference_rows(12)]
    issues = _issues(await upload(write_jsonl(tmp_path / "half.jsonl", rows), task="dpo"))
    assert issues == [
        "missing columns — expected dpo: 'prompt', 'chosen' (the answer to prefer) and "
        "'rejected' (the one to avoid); the file has 'prompt', 'chosen'"
    ]


async def test_preference_rows_are_checked_with_their_line(
    upload: UploadFn, tmp_path: Path
) -> None:
    rows = preference_rows(12)
    rows[2] = {**rows[2], "rejected": rows[2]["chosen"]}
    rows[5] = {**rows[5], "rejected": "  "}
    rows[7] = {**rows[7], "prompt": 7}
    issues = _issues(await upload(write_jsonl(tmp_path / "bad.jsonl", rows), task="orpo"))
    assert issues == [
        "line 3: 'chosen' and 'rejected' are the same answer; nothing to learn",
        "line 6: empty or non-text 'rejected'; each example needs a prompt, the answer to "
        "prefer ('chosen') and the one to avoid ('rejected')",
        "line 8: empty or non-text 'prompt'; each example needs a prompt, the answer to "
        "prefer ('chosen') and the one to avoid ('rejected')",
    ]


async def test_a_preference_dataset_is_refused_for_sft(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    tiny_llama: Path,
    tmp_path: Path,
) -> None:
    dataset = await upload(write_jsonl(tmp_path / "prefs.jsonl", preference_rows()))
    assert dataset.status_code == 201, dataset.text
    response = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={"task": "sft", "base_model": str(tiny_llama), "dataset_id": dataset.json()["id"]},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "dataset_task_mismatch"


@pytest.mark.parametrize("task", ["dpo", "orpo"])
def test_the_rules_advise_lora_and_a_low_learning_rate(task: str) -> None:
    from modelyard.training.advice import AdviceRequestFacts, rule_based_advice

    facts = AdviceRequestFacts(task=task, base_model="Qwen/Qwen2.5-0.5B-Instruct", num_examples=50)
    advice = rule_based_advice(facts)
    assert advice.hyperparameters.method == "lora" and advice.hyperparameters.lora_r == 16
    assert advice.hyperparameters.learning_rate < 1e-5
    assert advice.strategy.startswith(f"{task.upper()} of Qwen/Qwen2.5-0.5B-Instruct with LoRA")


@pytest.mark.parametrize("task", ["dpo", "orpo"])
async def test_a_budgeted_preference_job_searches_then_trains_within_its_budget(
    task: str,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    settings: Settings,
    tiny_llama: Path,
    tmp_path: Path,
) -> None:
    budget = 40
    response = await upload(write_jsonl(tmp_path / "prefs.jsonl", preference_rows(24)), task=task)
    assert response.status_code == 201, response.text
    body = {
        "task": task,
        "base_model": str(tiny_llama),
        "dataset_id": response.json()["id"],
        "output_name": f"searched-{task}",
        "lora": {"r": 4, "alpha": 8},
        "auto": {"time_budget_s": budget},
    }
    job, wall = await train_timed(http, auth, body, timeout=budget * 3)
    assert job["state"] == "succeeded", job
    assert wall <= budget * 1.1, f"{wall:.1f} s for a {budget} s budget"

    search = job["config"]["search"]
    assert search["metric"] == "eval_loss" and search["greater_is_better"] is False
    assert len(search["trials"]) >= 2, search
    assert all(t["state"] in ("complete", "pruned") for t in search["trials"]), search
    best = next(t for t in search["trials"] if t["number"] == search["best_trial"])
    assert best["state"] == "complete"
    assert best["metric"] == min(t["metric"] for t in search["trials"] if t["state"] == "complete")
    assert job["config"]["learning_rate"] == best["params"]["learning_rate"]
    assert job["metrics"]["eval_loss"] > 0
    (directory,) = (settings.data_dir.resolve() / "models").glob(f"u*/searched-{task}")
    card = json.loads((directory / "modelyard.json").read_text())
    assert card["hyperparameters"]["learning_rate"] == best["params"]["learning_rate"]
