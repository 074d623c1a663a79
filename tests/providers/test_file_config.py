"""Providers declared in the MODELYARD_CONFIG file: env references only, managed by the file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import Provider
from modelyard.providers.file_config import (
    ConfigFileError,
    apply_config_file,
    load_config_file,
    sync_file_providers,
)
from tests.helpers import bearer, make_token, make_user

CANARY = "sk-file-canary-0123456789abcdef"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modelyard.yaml"
    path.write_text(text)
    return path


CONFIG = """
providers:
  - name: OpenAI from file
    kind: openai
    api_key: ${FILE_OPENAI_KEY}
    is_default: true
  - name: Local vLLM
    kind: openai_compatible
    base_url: http://127.0.0.1:8001/v1
"""


async def _providers(database: Database) -> dict[str, Provider]:
    async with database.sessions() as session:
        return {p.name: p for p in (await session.execute(select(Provider))).scalars()}


async def test_declared_providers_are_loaded_and_managed_by_the_file(
    tmp_path: Path, database: Database, client: httpx.AsyncClient
) -> None:
    config = load_config_file(_write(tmp_path, CONFIG))
    async with database.sessions() as session:
        await sync_file_providers(session, config, {"FILE_OPENAI_KEY": CANARY})
    providers = await _providers(database)
    assert set(providers) == {"OpenAI from file", "Local vLLM"}
    assert providers["OpenAI from file"].api_key == CANARY
    assert providers["OpenAI from file"].is_default
    assert all(p.managed_by_file for p in providers.values())

    staff = bearer(
        await make_token(database, await make_user(database, "s@example.com", staff=True))
    )
    listed = (await client.get("/v2/admin/providers", headers=staff)).json()
    assert all(p["managed_by_file"] for p in listed)
    edit = await client.patch(
        f"/v2/admin/providers/{listed[0]['id']}", json={"base_model": "x"}, headers=staff
    )
    assert edit.status_code == 409 and "MODELYARD_CONFIG" in edit.json()["error"]["message"]

    smaller = load_config_file(_write(tmp_path, CONFIG.split("  - name: Local")[0]))
    async with database.sessions() as session:
        await sync_file_providers(session, smaller, {"FILE_OPENAI_KEY": "sk-rotated-000000000000"})
    providers = await _providers(database)
    assert set(providers) == {"OpenAI from file"}
    assert providers["OpenAI from file"].api_key == "sk-rotated-000000000000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "providers:\n  - name: a\n    kind: openai\n    api_key: sk-inline-000000000\n",
            "never written inline",
        ),
        ("providers:\n  - name: a\n    kind: openai\n    colour: red\n", "colour"),
        ("providers: [\n", "not valid YAML"),
        (
            "providers:\n  - {name: a, kind: openai, is_default: true}\n"
            "  - {name: b, kind: openai, is_default: true}\n",
            "at most one provider",
        ),
        ("providers:\n  - {name: a, kind: openai}\n  - {name: a, kind: groq}\n", "unique"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigFileError, match=message):
        load_config_file(_write(tmp_path, text))


async def test_a_missing_environment_variable_changes_nothing(
    tmp_path: Path, database: Database
) -> None:
    config = load_config_file(_write(tmp_path, CONFIG))
    async with database.sessions() as session:
        with pytest.raises(ConfigFileError, match=r"\$\{FILE_OPENAI_KEY\}"):
            await sync_file_providers(session, config, {})
    assert await _providers(database) == {}


async def test_the_file_is_loaded_at_start(
    tmp_path: Path, app: FastAPI, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILE_OPENAI_KEY", CANARY)
    app.state.modelyard.settings.config_file = _write(tmp_path, CONFIG)
    async with app.router.lifespan_context(app):
        assert set(await _providers(database)) == {"OpenAI from file", "Local vLLM"}


async def test_routes_are_declared_in_the_file_too(
    tmp_path: Path, database: Database, client: httpx.AsyncClient
) -> None:
    text = (
        "routes:\n  text-generation:\n    cache_ttl_seconds: 60\n    targets:\n"
        "      - {provider: openai, model: gpt-3.5-turbo}\n"
        "      - {provider: huggingface, endpoint: direct, model: facebook/bart-large-cnn}\n"
    )

    await apply_config_file(_write(tmp_path, text), database)
    staff = bearer(
        await make_token(database, await make_user(database, "r@example.com", staff=True))
    )
    [route] = (await client.get("/v2/admin/routes", headers=staff)).json()
    assert route["name"] == "text-generation" and route["managed_by_file"]
    assert route["targets"][1] == {
        "provider": "huggingface",
        "model": "facebook/bart-large-cnn",
        "endpoint": "direct",
    }
    refused = await client.patch(
        f"/v2/admin/routes/{route['id']}", json={"cache_ttl_seconds": 5}, headers=staff
    )
    assert refused.status_code == 409

    await apply_config_file(_write(tmp_path, "routes: {}\n"), database)
    assert (await client.get("/v2/admin/routes", headers=staff)).json() == []


def test_a_bad_route_in_the_file_names_where(tmp_path: Path) -> None:
    text = "routes:\n  r:\n    targets:\n      - {provider: openai, model: x, endpoint: direct}\n"
    with pytest.raises(ConfigFileError, match=r"routes\.r\.targets\.0"):
        load_config_file(_write(tmp_path, text))
