"""Helpers shared by the CLI commands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from rich.console import Console
from sqlalchemy.engine import Connection

from modelyard.config import Settings
from modelyard.db.engine import Database, create_database
from modelyard.db.migrate import alembic_config
from modelyard.logs import configure_logging

__all__ = [
    "console",
    "err_console",
    "require_migrated",
    "run_with_database",
    "schema_problem",
    "settings_from_env",
]

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def settings_from_env() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:

    async def runner() -> T:
        database = create_database(settings)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(runner())


def run_with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` with a database for ``settings`` and dispose of it afterwards; a
    database that is not migrated ends the command with the way out
    (:func:`require_migrated`)."""
    require_migrated(settings)
    return _with_database(settings, work)


def schema_problem(settings: Settings) -> str | None:
    """Why the database cannot be used (not reachable, not or not fully migrated)."""
    heads = set(ScriptDirectory.from_config(alembic_config(settings)).get_heads())

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async def read(database: Database) -> set[str]:
        async with database.engine.connect() as connection:
            return await connection.run_sync(current)

    where = settings.sqlalchemy_url.split("@")[-1]
    try:
        revisions = _with_database(settings, read)
    except Exception as exc:
        return f"Cannot reach the database {where} ({type(exc).__name__}); check DATABASE_URL."
    if revisions == heads:
        return None
    if not revisions:
        state = "has no tables yet (it was never migrated)"
    else:
        state = f"is at revision {', '.join(sorted(revisions))}, not {', '.join(sorted(heads))}"
    return (
        f"The database {where} {state}. Run `modelyard setup` (migrations and the first "
        "admin account) or `modelyard db upgrade` first, then this command again."
    )


def require_migrated(settings: Settings) -> None:
    """End the command (exit 1) with :func:`schema_problem`'s message when there is one."""
    problem = schema_problem(settings)
    if problem is not None:
        err_console.print(f"[red]Error:[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
