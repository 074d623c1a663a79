"""Queues usage events and writes them in batches, off the request path.

(Interim version: writes on flush only; the batching writer replaces it.)
"""

from __future__ import annotations

from modelyard.db.engine import Database
from modelyard.usage.events import UsageEvent

__all__ = ["UsageRecorder"]


class UsageRecorder:
    def __init__(self, database: Database, *, flush_interval: float = 1.0) -> None:
        self.database = database
        self.flush_interval = flush_interval
        self.pending: list[UsageEvent] = []

    def record(self, event: UsageEvent) -> None:
        """Queue ``event``; never blocks and never touches the database."""
        self.pending.append(event)

    async def start(self) -> None:
        """Start the background writer (called at application start)."""

    async def flush(self) -> None:
        """Write every queued event now."""

    async def aclose(self) -> None:
        """Flush what is queued and stop the writer (called at shutdown)."""
        await self.flush()
