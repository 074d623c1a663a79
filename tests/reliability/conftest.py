"""Fixtures for the reliability tests: a database kept for a whole module (so one server
process serves several tests), on each backend ``tests/conftest.py`` tests against."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.config import Settings
from modelyard.security.redaction import secret_registry
from tests.conftest import BACKENDS, _reset_postgres, _settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``serial``: they time servers under load and kill
    processes, so `make test` runs them after the parallel run, alone on the machine."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="module", params=BACKENDS)
def module_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Like the ``settings`` fixture, for every test of a module: a copy of the migrated
    SQLite template, or the session's PostgreSQL database (emptied afterwards).

    Synchronous, like the tests that use it: they drive processes and call
    ``asyncio.run`` (through ``run_with_database``) themselves."""
    directory = tmp_path_factory.mktemp("module-data")
    database_url: str | None = None
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), directory / "modelyard.db")
    else:
        database_url = str(request.getfixturevalue("postgres_url"))
    settings = _settings(directory, database_url)
    yield settings
    secret_registry.clear()
    if database_url is not None:
        asyncio.run(_reset_postgres(settings))
