"""The gateway's model index, stale under load, is read from the database once for all
the requests that find it stale together; one invalidated while it reads is read again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from modelyard.db.engine import Database
from modelyard.db.models import GatewayRoute
from modelyard.gateway.targets import ModelIndex


@contextmanager
def catalog_reads(database: Database) -> Iterator[list[str]]:
    """The statements that read the model catalog while the block runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM llm_models" in statement:
            seen.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_requests_that_find_the_index_stale_share_one_read(database: Database) -> None:
    index = ModelIndex()
    with catalog_reads(database) as reads:
        await asyncio.gather(*(index.resolve(database, "openai/gpt-4o") for _ in range(16)))
    assert len(reads) == 1


async def test_an_index_invalidated_while_it_reads_is_read_again(database: Database) -> None:
    index = ModelIndex()
    await index.resolve(database, "openai/gpt-4o")
    index.invalidate()
    reading = asyncio.create_task(index.resolve(database, "openai/gpt-4o"))
    await asyncio.sleep(0)  # the read has begun
    async with database.sessions() as session:
        session.add(
            GatewayRoute(
                name="added-meanwhile", targets=[{"provider": "openai", "model": "gpt-4o"}]
            )
        )
        await session.commit()
    index.invalidate()  # what the running read may have missed
    await reading
    resolution = await index.resolve(database, "added-meanwhile")
    assert resolution.route == "added-meanwhile"
