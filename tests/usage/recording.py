"""Helpers of the usage recorder and journal tests: events, commit counting, a table moved
away (so writes fail) and back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text

from modelyard.db.engine import Database
from modelyard.usage.events import UsageEvent

__all__ = ["counting_commits", "rename_table", "usage_event"]

_counter = iter(range(1, 1_000_000))


def usage_event(**values: Any) -> UsageEvent:
    """A usage event with plausible values (``values`` override them)."""
    defaults: dict[str, Any] = {
        "endpoint": "chat",
        "model": "gpt-4o-mini",
        "status": 200,
        "request_id": f"req-{next(_counter)}",
        "provider": "openai",
        "input_tokens": 3,
        "output_tokens": 5,
        "cost_usd": Decimal("0.00000345"),
        "latency_ms": 12,
        "attempts": 1,
    }
    return UsageEvent(**{**defaults, **values})


@contextmanager
def counting_commits(database: Database) -> Iterator[list[int]]:
    """A list that grows by one for each commit on ``database`` while the block runs."""
    commits: list[int] = []

    def on_commit(_connection: Any) -> None:
        commits.append(1)

    sa_event.listen(database.engine.sync_engine, "commit", on_commit)
    try:
        yield commits
    finally:
        sa_event.remove(database.engine.sync_engine, "commit", on_commit)


async def rename_table(database: Database, old: str, new: str) -> None:
    """Rename a table (``usage_records`` moved away makes every write fail)."""
    async with database.engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
