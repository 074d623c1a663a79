"""A tiny SFT job (LoRA) through the API; the trained model then chats through the gateway."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from transformers import AutoModelForCausalLM, AutoTokenizer

from modelyard.config import Settings
from modelyard.training.runner import TrainingRunner
from modelyard.training.tasks.sft import IGNORE, encode_chat
from tests.training.conftest import UploadFn, chat_rows, write_jsonl
from tests.training.jobs_helpers import wait_for


def test_only_assistant_tokens_are_learned(tiny_llama: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    messages = chat_rows(1)[0]["messages"]
    encoded = encode_chat(tokenizer, messages, max_length=256)
    assert encoded is not None
    learned = [
        t
        for t, label in zip(encoded["input_ids"], encoded["labels"], strict=True)
        if label != IGNORE
    ]
    text = str(tokenizer.decode(learned))
    assert text.startswith("hello world") and "say hello" not in text
    assert encode_chat(tokenizer, messages, max_length=4) is None


async def test_lora_sft_job_trains_and_the_model_chats(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    settings: Settings,
    tiny_llama: Path,
    tmp_path: Path,
) -> None:
    response = await upload(write_jsonl(tmp_path / "chat.jsonl", chat_rows(12)), task="sft")
    assert response.status_code == 201, response.text
    body = {
        "task": "sft",
        "method": "lora",
        "base_model": str(tiny_llama),
        "dataset_id": response.json()["id"],
        "output_name": "greeter",
        "max_steps": 3,
        "batch_size": 4,
        "learning_rate": 1e-2,
        "checkpoint_steps": 2,
        "logging_steps": 1,
        "lora": {"r": 4, "alpha": 8},
    }
    created = await http.post("/v2/training/jobs", headers=auth, json=body)
    assert created.status_code == 201, created.text
    job = await wait_for(http, auth, created.json()["id"])
    assert job["state"] == "succeeded", job
    metrics = job["metrics"]
    assert metrics["eval_loss"] > 0 and metrics["perplexity"] > 1
    (directory,) = (settings.data_dir.resolve() / "models").glob("u*/greeter")
    card = json.loads((directory / "modelyard.json").read_text())
    assert card["extra"]["method"] == "lora" and card["extra"]["lora"]["r"] == 4
    assert card["hyperparameters"]["lora"]["alpha"] == 8
    # The adapter was merged: a plain causal LM, no PEFT files.
    assert not (directory / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(directory)
    assert not any("lora" in name for name, _ in merged.named_parameters())

    chat = await http.post(
        "/v1/chat/completions",
        headers=auth,
        json={
            "model": "local/greeter",
            "messages": [{"role": "user", "content": "say hello"}],
            "max_tokens": 4,
            "temperature": 0,
        },
    )
    assert chat.status_code == 200, chat.text
    answer = chat.json()
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert answer["usage"]["completion_tokens"] >= 1
