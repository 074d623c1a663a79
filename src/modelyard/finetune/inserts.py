"""Inserting rows that may exist already: ``INSERT … ON CONFLICT DO NOTHING``.

The background sync and an explicit refresh (or two app processes) may store the same
event or publish the same model at once; with this, the second writer simply adds
nothing instead of failing on the unique constraint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.base import Base

__all__ = ["insert_new"]

#: Rows per statement (SQLite limits the bound parameters of one statement).
BATCH = 500


async def insert_new(
    session: AsyncSession,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    unique: Sequence[str],
) -> None:
    """Insert ``rows`` of ``model``, skipping those whose ``unique`` columns exist."""
    dialect = session.get_bind().dialect.name
    for start in range(0, len(rows), BATCH):
        batch = list(rows[start : start + BATCH])
        if dialect == "postgresql":
            pg = postgresql.insert(model).values(batch)
            await session.execute(pg.on_conflict_do_nothing(index_elements=list(unique)))
        elif dialect == "sqlite":
            lite = sqlite.insert(model).values(batch)
            await session.execute(lite.on_conflict_do_nothing(index_elements=list(unique)))
        else:
            await session.execute(insert(model).values(batch))
