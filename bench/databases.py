"""Databases for the benchmarks: a migrated SQLite file, or a fresh PostgreSQL database.

PostgreSQL: ``MODELYARD_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/
postgres``) names a server where a database of the benchmark's own is created and dropped.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet

from modelyard.config import Settings
from modelyard.db.migrate import upgrade

__all__ = ["PostgresUnavailable", "bench_settings", "postgres_settings", "sqlite_settings"]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server answered; the message says why."""


def bench_settings(data_dir: Path, database_url: str | None) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "database_url": database_url,
        "encryption_keys": Fernet.generate_key().decode(),
        "_env_file": None,
    }
    return Settings(**values)


@contextmanager
def sqlite_settings() -> Iterator[Settings]:
    """Settings for a migrated SQLite database in a temporary data directory."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp), None)
        upgrade(settings)
        yield settings


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def postgres_settings() -> Iterator[Settings]:
    """Settings for a migrated PostgreSQL database of its own, dropped afterwards;
    raises :class:`PostgresUnavailable` when no server answers."""
    admin_url = os.environ.get("MODELYARD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    admin_url = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"modelyard_bench_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        raise PostgresUnavailable(f"PostgreSQL not reachable ({type(error).__name__})") from None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = bench_settings(Path(tmp), admin_url.rsplit("/", 1)[0] + f"/{name}")
            upgrade(settings)
            yield settings
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
