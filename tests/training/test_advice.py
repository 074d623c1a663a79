"""Training advice: the rule-based recommender, and ``POST /v2/training/advice`` against a
fake Groq server on 127.0.0.1 (valid JSON, invalid JSON, a timeout, a refused key) and
through a gateway model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from modelyard.providers import records
from modelyard.training.advice import (
    AdviceRequestFacts,
    AdviceUnusable,
    estimate_parameters,
    parse_advice,
    rule_based_advice,
)
from tests.fakes.openai_chat import ChatGroq
from tests.training.conftest import UploadFn, classification_rows, write_csv

GROQ_KEY = "gsk_canaryadvicekey0123456789abcdefghijklm"
GOOD_ADVICE = {
    "hyperparameters": {"epochs": 4, "learning_rate": 3e-5, "batch_size": 16, "method": "full"},
    "dataset_sources": [{"name": "stanfordnlp/sst2", "url": "https://hf.co/datasets/sst2"}],
    "strategy": "Fine-tune the whole encoder; evaluate with macro F1.",
    "notes": ["balance the labels"],
}


@pytest.fixture
def groq(settings: Settings) -> Iterator[ChatGroq]:
    with ChatGroq(keys={GROQ_KEY}) as fake:
        settings.advice_base_url = fake.base_url
        yield fake


async def _advise(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await http.post(
        "/v2/training/advice", headers=auth, json={"task": "classification", **body}
    )


def test_estimate_parameters_from_names() -> None:
    assert estimate_parameters("Qwen/Qwen2.5-0.5B-Instruct") == 500_000_000
    assert estimate_parameters("meta-llama/Llama-3.1-8B") == 8_000_000_000
    assert estimate_parameters("all-MiniLM-L6-v2") == 22_700_000
    assert estimate_parameters("gpt2") is None


def test_rules_depend_on_data_model_and_hardware() -> None:
    small = rule_based_advice(AdviceRequestFacts(task="classification", num_examples=40))
    # About 32 training examples, 2 steps a pass: the most passes (early stopping ends it).
    assert small.hyperparameters.epochs == 10 and small.hyperparameters.batch_size == 16
    assert "300 optimizer steps" in small.hyperparameters.reasons["epochs"]
    assert any("Only 40 examples" in note for note in small.notes)
    big_data = rule_based_advice(
        AdviceRequestFacts(task="classification", num_examples=50_000, compute_type="gpu")
    )
    assert big_data.hyperparameters.epochs == 1 and big_data.hyperparameters.batch_size == 32
    large = rule_based_advice(
        AdviceRequestFacts(task="sft", base_model="meta-llama/Llama-3.1-8B", num_examples=5000)
    )
    assert large.hyperparameters.method == "lora" and large.hyperparameters.lora_r == 16
    assert any("impractically slow" in note for note in large.notes)
    tiny = rule_based_advice(AdviceRequestFacts(task="sft", base_model="Qwen/Qwen2.5-0.5B"))
    assert tiny.hyperparameters.method == "full"
    # Deterministic: the same facts give the same advice.
    assert rule_based_advice(AdviceRequestFacts(task="sft")) == rule_based_advice(
        AdviceRequestFacts(task="sft")
    )


def test_parse_advice_says_what_is_wrong() -> None:
    assert parse_advice("```json\n" + json.dumps(GOOD_ADVICE) + "\n```").strategy
    with pytest.raises(AdviceUnusable, match="not valid JSON"):
        parse_advice("Sure! Here is my advice: use 3 epochs.")
    with pytest.raises(AdviceUnusable, match=r"hyperparameters\.learning_rate"):
        parse_advice(json.dumps({**GOOD_ADVICE, "hyperparameters": {"epochs": 1, "batch_size": 8}}))


async def test_without_a_key_the_rules_answer(
    http: httpx.AsyncClient, auth: dict[str, str], upload: UploadFn, tmp_path: Path
) -> None:
    dataset = (await upload(write_csv(tmp_path / "d.csv", classification_rows(30)))).json()
    response = await _advise(http, auth, dataset_id=dataset["id"], description="sentiment")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["source"] == "rules" and result["fallback_reason"] is None
    assert any("Only 30 examples" in note for note in result["advice"]["notes"])
    assert "over 2 labels" in result["advice"]["strategy"]


async def test_groq_advice_is_strict_json_checked_by_the_schema(
    http: httpx.AsyncClient, auth: dict[str, str], groq: ChatGroq, settings: Settings
) -> None:
    groq.scripted_reply = json.dumps(GOOD_ADVICE)
    response = await _advise(
        http, auth, description="classify support tickets", groq_api_key=GROQ_KEY
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["source"] == "llm" and result["model"] == settings.advice_model
    assert result["advice"]["hyperparameters"]["learning_rate"] == 3e-5
    assert result["advice"]["dataset_sources"][0]["name"] == "stanfordnlp/sst2"
    sent = groq.requests[-1]
    assert sent.header("authorization") == f"Bearer {GROQ_KEY}"
    body = sent.json()
    assert body["response_format"] == {"type": "json_object"}
    assert "classify support tickets" in body["messages"][1]["content"]
    assert "hyperparameters" in body["messages"][0]["content"]


async def test_groq_advice_passes_the_rules_clamps(
    http: httpx.AsyncClient, auth: dict[str, str], groq: ChatGroq
) -> None:
    reckless = {"epochs": 90, "learning_rate": 0.5, "batch_size": 16, "warmup_ratio": 0.9}
    groq.scripted_reply = json.dumps({**GOOD_ADVICE, "hyperparameters": reckless})
    response = await _advise(http, auth, groq_api_key=GROQ_KEY)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["source"] == "llm"
    hyper = result["advice"]["hyperparameters"]
    assert (hyper["epochs"], hyper["learning_rate"], hyper["warmup_ratio"]) == (20, 1e-3, 0.3)
    assert hyper["batch_size"] == 16
    assert any("learning_rate 0.5 was outside" in note for note in result["advice"]["notes"])


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("Use three epochs and a small learning rate.", "not valid JSON"),
        (json.dumps({"strategy": "x"}), "did not match the advice schema (hyperparameters"),
        (json.dumps([1, 2]), "not an object"),
    ],
)
async def test_unusable_answers_fall_back_to_the_rules(
    http: httpx.AsyncClient, auth: dict[str, str], groq: ChatGroq, reply: str, reason: str
) -> None:
    groq.scripted_reply = reply
    response = await _advise(http, auth, groq_api_key=GROQ_KEY)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["source"] == "rules" and reason in result["fallback_reason"]
    assert result["advice"]["hyperparameters"]["epochs"] == 3


async def test_a_late_answer_falls_back_to_the_rules(
    http: httpx.AsyncClient, auth: dict[str, str], groq: ChatGroq, settings: Settings
) -> None:
    settings.advice_timeout_seconds = 0.3
    groq.delay = 2
    response = await _advise(http, auth, groq_api_key=GROQ_KEY)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["source"] == "rules"
    assert result["fallback_reason"] == "the advice model did not answer within 0.3 s"


async def test_a_refused_key_falls_back_and_says_so(
    http: httpx.AsyncClient, auth: dict[str, str], groq: ChatGroq
) -> None:
    wrong = "gsk_canarywrongadvicekey0123456789abcdefgh"
    response = await _advise(http, auth, groq_api_key=wrong)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["source"] == "rules" and "Groq key was refused" in result["fallback_reason"]


async def test_malformed_or_missing_keys_are_400(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await _advise(http, auth, groq_api_key="gsk_short")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Groq API key seems too short"
    response = await _advise(http, auth, use_saved_key=True)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_saved_key"


async def test_saved_key_is_used(
    http: httpx.AsyncClient, auth: dict[str, str], groq: ChatGroq
) -> None:
    saved = await http.patch(
        "/v2/users/me/api-key", headers=auth, json={"provider": "groq", "api_key": GROQ_KEY}
    )
    assert saved.status_code == 200, saved.text
    groq.scripted_reply = json.dumps(GOOD_ADVICE)
    response = await _advise(http, auth, use_saved_key=True)
    assert response.json()["source"] == "llm"
    assert groq.requests[-1].header("authorization") == f"Bearer {GROQ_KEY}"


async def test_any_gateway_model_the_user_may_use_can_advise(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    groq: ChatGroq,
    database: Database,
    training_app: FastAPI,
) -> None:
    async with database.sessions() as session:
        await records.create_provider(
            session,
            actor=None,
            values={"name": "groq", "kind": "groq", "api_key": GROQ_KEY, "base_url": groq.base_url},
        )
    groq.scripted_reply = json.dumps(GOOD_ADVICE)
    response = await _advise(http, auth, model="llama-3.1-8b-instant")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["source"] == "llm" and result["model"] == "llama-3.1-8b-instant"
    assert groq.requests[-1].json()["model"] == "llama-3.1-8b-instant"
    # Metered like any chat: one usage record for the advice call.
    await training_app.state.modelyard.usage.flush()
    async with database.sessions() as session:
        usage = list(await session.scalars(select(UsageRecord)))
    assert [u.endpoint for u in usage] == ["training.advice"]
