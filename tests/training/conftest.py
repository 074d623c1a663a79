"""Fixtures: the training routes on the test app, a user with a token, tiny datasets and
tiny models (the offline MiniLM, a random Llama), and a fast runner."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.training.runner import TrainingRunner
from modelyard.training.service import start_training, stop_training, training_service
from tests.helpers import bearer, make_token, make_user
from tests.local.builders import build_causal

POSITIVE = ["great film", "loved it", "wonderful acting", "a joy to watch", "brilliant story"]
NEGATIVE = ["awful film", "hated it", "terrible acting", "a bore to watch", "dreadful story"]


def classification_rows(count: int = 20) -> list[dict[str, str]]:
    pool = [(t, "positive") for t in POSITIVE] + [(t, "negative") for t in NEGATIVE]
    return [
        {"text": f"{pool[i % len(pool)][0]} {i}", "label": pool[i % len(pool)][1]}
        for i in range(count)
    ]


def chat_rows(count: int = 12) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": f"say hello {i}"},
                {"role": "assistant", "content": "hello world"},
            ]
        }
        for i in range(count)
    ]


def preference_rows(count: int = 10) -> list[dict[str, Any]]:
    return [
        {"prompt": f"say hello {i}", "chosen": "hello world", "rejected": "go away now"}
        for i in range(count)
    ]


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def training_app(app: FastAPI) -> FastAPI:
    """The app (its routers include training and datasets)."""
    return app


@pytest.fixture
async def http(training_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    from tests.conftest import refuse_canaries

    transport = httpx.ASGITransport(app=training_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
        timeout=60,
    ) as client:
        yield client


@pytest.fixture
def settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Tiny base models are directories under pytest's temporary root, configured as a
    root staff may load models from."""
    settings.local_model_dirs = [tmp_path_factory.getbasetemp()]
    return settings


@pytest.fixture
async def auth(database: Database) -> dict[str, str]:
    """A staff user's token (only staff train from a directory, as these tests do); the
    tenancy tests use ordinary users of their own."""
    user = await make_user(database, "trainer@example.com", staff=True)
    return bearer(await make_token(database, user))


@pytest.fixture
async def runner(training_app: FastAPI) -> AsyncIterator[TrainingRunner]:
    """The app's runner, started, polling fast; stopped at the end of the test."""
    service = training_service(training_app)
    service.runner.poll_interval = 0.05
    await start_training(training_app)
    yield service.runner
    await stop_training(training_app)


@pytest.fixture
async def dataset_id(upload: UploadFn, tmp_path: Path) -> int:
    """A 20-example classification dataset, uploaded by the test's user."""
    response = await upload(write_csv(tmp_path / "reviews.csv", classification_rows(20)))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_causal(tmp_path_factory.mktemp("models") / "tiny-llama", eos=True)


UploadFn = Callable[..., Any]


@pytest.fixture
def upload(http: httpx.AsyncClient, auth: dict[str, str]) -> UploadFn:
    async def send(path: Path, **form: str) -> httpx.Response:
        with path.open("rb") as handle:
            return await http.post(
                "/v2/datasets",
                headers=auth,
                files={"file": (path.name, handle.read())},
                data=form,
            )

    return send


def build_tiny_bert(directory: Path, max_positions: int = 64) -> Path:
    """A random two-layer BERT with the MiniLM's tokenizer (fast to train and save) in
    ``directory``, with room for ``max_positions`` tokens."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from modelyard.local.sources import BUILT_IN_MODELS

    tokenizer = AutoTokenizer.from_pretrained(BUILT_IN_MODELS["all-MiniLM-L6-v2"]())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=max_positions,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT of :func:`build_tiny_bert` (64 positions)."""
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")
