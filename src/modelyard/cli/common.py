"""Helpers shared by the CLI commands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console

from modelyard.config import Settings
from modelyard.db.engine import Database, create_database
from modelyard.logs import configure_logging

__all__ = ["console", "err_console", "run_with_database", "settings_from_env"]

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def settings_from_env() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def run_with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` with a database for ``settings`` and dispose of it afterwards."""

    async def runner() -> T:
        database = create_database(settings)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(runner())
