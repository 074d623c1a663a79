"""Responses kept for their user: saved, loaded, deleted, and purged once expired.

Every query is scoped by the owner's id: another user's response, like an expired one, is
indistinguishable from one that does not exist, and all raise the same 404. Rows live
``responses_retention_days`` (see :mod:`modelyard.config`); loads ignore expired rows.

Saves are group-committed: :meth:`ResponseStore.save` returns once its row is committed
(so a ``previous_response_id`` sent right after finds it, on any worker), and the saves
that arrive while a commit is under way share the next transaction — one commit per batch,
not per response. Expired rows are deleted with a batch at most once a minute, so no
scheduler is needed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from modelyard.db.engine import Database
from modelyard.db.models import StoredResponse
from modelyard.db.types import utcnow
from modelyard.errors import NotFoundError

__all__ = ["PURGE_EVERY_SECONDS", "ResponseStore", "not_found"]

#: Expired rows are deleted at most this often (with a batch of saves).
PURGE_EVERY_SECONDS = 60.0
#: Rows per group commit at most.
MAX_BATCH = 200


def not_found(response_id: str, param: str = "response_id") -> NotFoundError:
    """The one 404 for a response that is missing, expired, or someone else's."""
    return NotFoundError(
        f"No response with id {response_id!r} for this account (responses are kept for a "
        "limited time, and only when created with store=true).",
        param=param,
        code="response_not_found",
    )


class ResponseStore:
    """One per application: the stored responses of every user, in ``database``."""

    def __init__(
        self,
        database: Database,
        *,
        retention_days: int,
        purge_every_seconds: float = PURGE_EVERY_SECONDS,
    ) -> None:
        self.database = database
        self.retention = timedelta(days=retention_days)
        #: Expired rows are deleted with a batch at most this often.
        self.purge_every_seconds = purge_every_seconds
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._purged_at = float("-inf")

    async def save(
        self, *, user_id: int, response: dict[str, Any], context: list[dict[str, Any]]
    ) -> None:
        """Keep ``response`` and its chat-form ``context`` for ``user_id``; returns once
        committed (a failed commit raises here)."""
        now = utcnow()
        row = {
            "id": response["id"],
            "user_id": user_id,
            "model": str(response.get("model") or ""),
            "response": response,
            "context": context,
            "created_at": now,
            "expires_at": now + self.retention,
        }
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        # Shielded: a client that leaves does not cancel the others' commit.
        await asyncio.shield(done)

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                async with self.database.sessions() as session:
                    await session.execute(insert(StoredResponse), [row for row, _ in batch])
                    if time.monotonic() - self._purged_at >= self.purge_every_seconds:
                        await session.execute(
                            delete(StoredResponse).where(StoredResponse.expires_at <= utcnow())
                        )
                        self._purged_at = time.monotonic()
                    await session.commit()
            except Exception as error:  # each waiting save raises it
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def load(
        self, *, user_id: int, response_id: str, param: str = "response_id"
    ) -> StoredResponse:
        """The caller's unexpired response ``response_id`` (else the one 404)."""
        async with self.database.sessions() as session:
            row = await session.scalar(
                select(StoredResponse).where(
                    StoredResponse.id == response_id,
                    StoredResponse.user_id == user_id,
                    StoredResponse.expires_at > utcnow(),
                )
            )
        if row is None:
            raise not_found(response_id, param)
        return row

    async def delete(self, *, user_id: int, response_id: str) -> None:
        """Delete the caller's response ``response_id`` (the one 404 when it has none)."""
        async with self.database.sessions() as session:
            result = await session.execute(
                delete(StoredResponse).where(
                    StoredResponse.id == response_id,
                    StoredResponse.user_id == user_id,
                    StoredResponse.expires_at > utcnow(),
                )
            )
            await session.commit()
        if not getattr(result, "rowcount", 0):
            raise not_found(response_id)
