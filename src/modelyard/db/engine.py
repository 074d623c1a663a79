"""Async engine and session factory; SQLite gets WAL, a busy timeout and foreign keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from modelyard.config import Settings
from modelyard.db.types import KEYRING_ATTRIBUTE
from modelyard.security.encryption import Keyring, load_keyring

__all__ = ["POOL_SIZE", "Database", "attach_keyring", "create_database"]

SQLITE_BUSY_TIMEOUT_MS = 30_000


def attach_keyring(engine: AsyncEngine, keyring: Keyring) -> None:
    """Give ``engine`` the keys its encrypted columns use."""
    setattr(engine.sync_engine.dialect, KEYRING_ATTRIBUTE, keyring)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


#: Server databases: connections the pool keeps open, and how many more it opens under load
#: (closed again when returned).
POOL_SIZE = 10
POOL_OVERFLOW = 20


@dataclass
class Database:
    """The engine and the session factory of one process."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(settings: Settings, keyring: Keyring | None = None) -> Database:
    """Create the engine for ``settings`` with its keyring attached."""
    url = settings.sqlalchemy_url
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
    else:
        engine = create_async_engine(
            url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW
        )
    attach_keyring(engine, keyring or load_keyring(settings))
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False))
