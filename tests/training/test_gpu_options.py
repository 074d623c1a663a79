"""The GPU options of a job (precision, gradient checkpointing, QLoRA): refused with a 400
naming the param when this job cannot have them, turned into training arguments on the
machine that trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from modelyard.training.config import TrainingConfig
from modelyard.training.gpu import compute_dtype, precision_flags, require_4bit
from modelyard.training.worker import _training_arguments
from tests.training.conftest import UploadFn, chat_rows, write_jsonl


async def _refused(http: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> Any:
    response = await http.post("/v2/training/jobs", headers=auth, json=body)
    assert response.status_code == 400, response.text
    listed = await http.get("/v2/training/jobs", headers=auth)
    assert listed.json()["data"] == []  # nothing queued
    return response.json()["error"]


async def test_bf16_on_a_cpu_job_is_refused(
    http: httpx.AsyncClient, auth: dict[str, str], dataset_id: int
) -> None:
    body = {"task": "classification", "dataset_id": dataset_id, "precision": "bf16"}
    error = await _refused(http, auth, body)
    assert error["param"] == "precision" and error["code"] == "gpu_option_on_cpu"
    assert error["message"].startswith("precision bf16 is for GPU jobs: set compute_type gpu")
    auto = await http.post(
        "/v2/training/jobs", headers=auth, json={**body, "precision": "auto", "max_steps": 1}
    )
    assert auto.status_code == 201, auto.text


async def test_4bit_on_a_cpu_job_is_refused(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    tiny_llama: Path,
    tmp_path: Path,
) -> None:
    dataset = await upload(write_jsonl(tmp_path / "chat.jsonl", chat_rows(12)), task="sft")
    body = {
        "task": "sft",
        "method": "lora",
        "base_model": str(tiny_llama),
        "dataset_id": dataset.json()["id"],
        "load_in_4bit": True,
    }
    error = await _refused(http, auth, body)
    assert error["param"] == "load_in_4bit" and error["code"] == "gpu_option_on_cpu"
    assert "needs compute_type gpu" in error["message"]


async def test_4bit_with_full_fine_tuning_is_refused(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    tiny_llama: Path,
    tmp_path: Path,
) -> None:
    dataset = await upload(write_jsonl(tmp_path / "chat.jsonl", chat_rows(12)), task="sft")
    body = {
        "task": "sft",
        "method": "full",
        "compute_type": "gpu",
        "base_model": str(tiny_llama),
        "dataset_id": dataset.json()["id"],
        "load_in_4bit": True,
    }
    error = await _refused(http, auth, body)
    assert error["param"] == "method"
    assert error["message"].endswith("set method lora.")


async def test_4bit_on_a_classification_job_is_refused(
    http: httpx.AsyncClient, auth: dict[str, str], dataset_id: int
) -> None:
    body = {
        "task": "classification",
        "compute_type": "gpu",
        "dataset_id": dataset_id,
        "load_in_4bit": True,
    }
    error = await _refused(http, auth, body)
    assert error["param"] == "load_in_4bit"
    assert error["message"] == (
        "load_in_4bit (QLoRA) trains causal LMs (sft, dpo, orpo), not classification."
    )


def _config(**values: Any) -> TrainingConfig:
    return TrainingConfig.model_validate({"task": "sft", "compute_type": "gpu", **values})


@pytest.mark.parametrize(
    ("precision", "flags"),
    [
        ("bf16", {"bf16": True, "fp16": False}),
        ("fp16", {"bf16": False, "fp16": True}),
        ("fp32", {"bf16": False, "fp16": False}),
    ],
)
def test_precision_flags_on_a_gpu(precision: str, flags: dict[str, bool]) -> None:
    assert precision_flags(_config(precision=precision), "cuda") == flags


def test_auto_precision_is_bf16_where_the_gpu_has_it_else_fp16() -> None:
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    flags = precision_flags(_config(), "cuda")
    assert flags == {"bf16": bf16, "fp16": not bf16}
    assert compute_dtype(_config(), "cuda") == (torch.bfloat16 if bf16 else torch.float16)


@pytest.mark.parametrize("precision", ["auto", "bf16", "fp16", "fp32"])
def test_a_cpu_trains_in_fp32(precision: str) -> None:
    config = _config(precision=precision)
    assert precision_flags(config, "cpu") == {"bf16": False, "fp16": False}
    assert compute_dtype(config, "cpu") == torch.float32


def test_4bit_without_a_gpu_names_what_is_missing() -> None:
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible to the worker"):
        require_4bit(_config(method="lora", load_in_4bit=True), "cpu")


def test_the_training_arguments_take_the_gpu_options_and_the_tasks_own(tmp_path: Path) -> None:
    from trl import DPOConfig

    config = _config(
        task="dpo", compute_type="cpu", gradient_checkpointing=True, beta=0.3, max_steps=2
    )
    arguments = _training_arguments(config, tmp_path, "cpu", DPOConfig, {"beta": config.beta})
    assert isinstance(arguments, DPOConfig) and arguments.beta == 0.3
    assert arguments.activation_checkpointing is arguments.gradient_checkpointing is True
    assert arguments.activation_checkpointing_kwargs == {"use_reentrant": False}
    assert arguments.bf16 is False and arguments.fp16 is False
    plain = _training_arguments(_config(compute_type="cpu"), tmp_path, "cpu", None, {})
    assert type(plain).__name__ == "TrainingArguments" and plain.gradient_checkpointing is False
    # TRL turns checkpointing on by default; a job that did not ask has it off.
    dpo = _training_arguments(
        _config(task="dpo", compute_type="cpu"), tmp_path, "cpu", DPOConfig, {}
    )
    assert dpo.gradient_checkpointing is False


def _saved_in(source: Path, target: Path, dtype: torch.dtype, model_class: Any) -> Path:
    from transformers import AutoTokenizer

    model_class.from_pretrained(source, dtype=dtype).save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_checkpoint_is_trained_in_fp32(
    dtype: torch.dtype, tiny_llama: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    """transformers 5 loads a checkpoint in its own format: bf16/fp16 weights would lose a
    low learning rate's updates (and fp16 ones fail fp16 mixed precision)."""
    from transformers import AutoModel, AutoModelForCausalLM

    from modelyard.training.tasks.causal import load_causal
    from modelyard.training.tasks.classification import prepare
    from tests.training.conftest import classification_rows

    llama = _saved_in(tiny_llama, tmp_path / "llama", dtype, AutoModelForCausalLM)
    assert AutoModelForCausalLM.from_pretrained(llama).dtype == dtype  # as transformers loads it
    for method in ("full", "lora"):
        config = TrainingConfig(task="sft", method=method)
        model, _finish, _card = load_causal(config, llama)
        trained = [p for p in model.parameters() if p.requires_grad]
        assert trained and all(p.dtype == torch.float32 for p in trained), method

    bert = _saved_in(tiny_bert, tmp_path / "bert", dtype, AutoModel)
    config = TrainingConfig(task="classification", max_length=32)
    prepared = prepare(config, classification_rows(20), bert)
    assert all(p.dtype == torch.float32 for p in prepared.model.parameters())
