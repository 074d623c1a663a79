"""Fixtures for local-model tests: tiny models built once per session, offline, and the
official SDK talking to the app (no provider key configured anywhere).

The tiny models are loaded by path, which only staff may do and only under
``local_model_dirs``: the SDK's user is staff and pytest's temporary root is configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.local.manager import ModelManager
from tests.gateway.conftest import asgi_http, sdk
from tests.helpers import make_token, make_user
from tests.local.builders import build_causal, build_seq2seq

__all__ = ["asgi_http", "sdk"]


@pytest.fixture
def settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings.local_model_dirs = [tmp_path_factory.getbasetemp()]
    return settings


@pytest.fixture
async def user_token(database: Database) -> str:
    return await make_token(database, await make_user(database, "sdk@example.com", staff=True))


@pytest.fixture(scope="session")
def causal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random Llama with a chat template; it never emits EOS."""
    return build_causal(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_seq2seq(tmp_path_factory.mktemp("models") / "tiny-t5")


@pytest.fixture(scope="session")
def reference(causal_dir: Path) -> tuple[Any, Any]:
    """The tiny Llama loaded with transformers directly, to compare answers with."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(causal_dir), AutoTokenizer.from_pretrained(
        causal_dir
    )


@pytest.fixture
def local_models(app: FastAPI) -> ModelManager:
    """The app's model manager (the one the local adapter uses)."""
    manager: ModelManager = app.state.modelyard.gateway.local_models
    return manager
