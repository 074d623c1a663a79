"""Fixtures: a migrated database per test (SQLite always, PostgreSQL when configured),
an application built on it, and an HTTP client speaking ASGI to it."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import insert, select, text

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.base import Base
from modelyard.db.engine import Database, create_database
from modelyard.db.migrate import upgrade
from modelyard.db.models import LlmModel
from modelyard.security.redaction import secret_registry

POSTGRES_URL = os.environ.get("MODELYARD_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def _settings(data_dir: Path, database_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "data_dir": data_dir,
        "database_url": database_url,
        "encryption_keys": Fernet.generate_key().decode(),
        # Frozen objects are never collected: a test process builds hundreds of apps.
        "gc_freeze": False,
        # Python's own young threshold: apps whose lifespans overlap would restore theirs
        # out of order (tests/api/test_runtime_probes.py checks the server's).
        "gc_young_threshold": 0,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    directory = tmp_path_factory.mktemp("template")
    upgrade(_settings(directory, None))
    return directory / "modelyard.db"


_CATALOG_SEED: list[dict[str, object]] = []


async def _read_catalog_seed(settings: Settings) -> None:
    database = create_database(settings)
    async with database.engine.connect() as connection:
        rows = await connection.execute(select(LlmModel.__table__))
        _CATALOG_SEED[:] = [dict(row._mapping) for row in rows]
    await database.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once."""
    assert POSTGRES_URL is not None
    import asyncio

    name = f"modelyard_test_{uuid.uuid4().hex[:12]}"
    admin_url = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    settings = _settings(Path("/nonexistent"), url)
    upgrade(settings)
    asyncio.run(_read_catalog_seed(settings))
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "modelyard.db")
        return None
    return str(request.getfixturevalue("postgres_url"))


async def _reset_postgres(settings: Settings) -> None:
    """Empty every table, then put the migration's seed data (the catalog) back."""
    database = create_database(settings)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await connection.execute(insert(LlmModel.__table__), _CATALOG_SEED)
        await connection.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('llm_models', 'id'), max(id)) FROM llm_models"
            )
        )
    await database.dispose()


@pytest.fixture
async def settings(tmp_path: Path, database_url: str | None) -> AsyncIterator[Settings]:
    settings = _settings(tmp_path, database_url)
    yield settings
    secret_registry.clear()
    if database_url is not None:
        await _reset_postgres(settings)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, system_keys={})
    yield application
    await application.state.modelyard.aclose()


@pytest.fixture
def database(app: FastAPI) -> Database:
    db: Database = app.state.modelyard.database
    return db


#: Every canary key in the tests has this marker; no response may ever contain one.
CANARY_SHAPE = re.compile(r"(sk-|sk-ant-|hf_|gsk_|AIza|myd_)[A-Za-z0-9_\-]*canary", re.IGNORECASE)


async def refuse_canaries(response: httpx.Response) -> None:
    """Fail the test when a response carries a canary key (headers or body)."""
    await response.aread()
    seen = CANARY_SHAPE.search(response.text) or CANARY_SHAPE.search(str(response.headers))
    assert seen is None, f"{response.request.url} leaked a canary key: {seen.group(0)!r}"


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as http:
        yield http
