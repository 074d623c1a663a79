"""``POST /train`` in the first front end's flat shape: the keys beside the config, and
Hugging Face's task names — with canary keys that must never be stored or logged."""

from __future__ import annotations

import logging

import httpx
import pytest

from modelyard.db.engine import Database
from modelyard.training.config import TrainingConfig
from tests.helpers import database_text

HF_TOKEN = "hf_canaryflatshape0123456789abcdefgh"
GROQ_KEY = "gsk_canaryflatshapegroq0123456789abcdefghij"


def test_hugging_face_task_names_are_aliases() -> None:
    assert TrainingConfig(task="text-classification").task == "classification"
    assert TrainingConfig(task="text-generation").task == "sft"
    with pytest.raises(ValueError, match="task"):
        TrainingConfig(task="summarization")


async def test_flat_keys_and_task_names_queue_a_job_and_leave_no_trace(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    dataset_id: int,
    database: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await http.post(
        "/train",
        headers=auth,
        json={
            "task": "text-classification",
            "dataset_id": dataset_id,
            "compute_type": "cpu",
            "hf_token": HF_TOKEN,
            "groq_api_key": GROQ_KEY,
            "epochs": 2,
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["task"] == "classification" and job["compute_type"] == "cpu"
    assert job["config"]["epochs"] == 2
    assert "hf_token" not in job["config"] and "groq_api_key" not in job["config"]
    # The flat token is the job's token: the model is pushed when the job succeeds.
    assert job["hub_push"] == {"repo_id": None, "private": True, "state": "pending"}
    stored = await database_text(database)
    assert HF_TOKEN not in stored and GROQ_KEY not in stored
    assert HF_TOKEN not in caplog.text and GROQ_KEY not in caplog.text

    tasks = (await http.get("/v2/training/tasks", headers=auth)).json()["data"]
    aliases = {t["name"]: t["aliases"] for t in tasks}
    assert aliases["classification"] == ["text-classification"]
    assert aliases["sft"] == ["text-generation"]


async def test_flat_requests_are_checked_without_echoing_keys(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    dataset_id: int,
    database: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    base = {"task": "text-classification", "dataset_id": dataset_id}
    malformed = await http.post("/train", headers=auth, json={**base, "hf_token": "hf_short"})
    assert malformed.status_code == 400
    assert malformed.json()["error"]["param"] == "hf_token"
    assert malformed.json()["error"]["code"] == "invalid_key_format"
    twice = await http.post(
        "/train",
        headers=auth,
        json={**base, "hf_token": HF_TOKEN, "keys": {"hf_token": HF_TOKEN}},
    )
    assert twice.status_code == 422 and "not both" in twice.json()["error"]["message"]
    # A bad value beside a key: the answer names the value, never the key (the client's
    # hook fails the test on any canary in a response).
    bad = await http.post("/train", headers=auth, json={**base, "hf_token": HF_TOKEN, "epochs": -1})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "epochs"
    mismatch = await http.post(
        "/train", headers=auth, json={**base, "task": "text-generation", "groq_api_key": GROQ_KEY}
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["code"] == "dataset_task_mismatch"
    assert "task sft" in mismatch.json()["error"]["message"]
    neither = await http.post("/train", headers=auth, json={"task": "classification"})
    assert neither.status_code == 422 and "dataset_id" in neither.json()["error"]["message"]
    both = await http.post("/train", headers=auth, json={**base, "dataset": "hub://acme/reviews"})
    assert both.status_code == 422
    assert (await http.get("/v2/training/jobs", headers=auth)).json()["data"] == []
    stored = await database_text(database)
    assert HF_TOKEN not in stored and GROQ_KEY not in stored
    assert HF_TOKEN not in caplog.text and GROQ_KEY not in caplog.text
