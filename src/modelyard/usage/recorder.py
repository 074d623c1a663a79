"""Queues usage events and writes them in batches, off the request path.

:meth:`UsageRecorder.record` appends to an in-memory queue and returns at once: it never
awaits and never touches the database. One background task (:meth:`UsageRecorder.start`)
writes what is queued every ``flush_interval`` seconds, and sooner when ``batch_size``
events are waiting; each batch is one ``INSERT`` in one transaction: on PostgreSQL one
statement with a column of values per parameter (``unnest``: the server plans and runs it
once per batch, not once per row), elsewhere an executemany. Events leave the queue only
once their transaction has committed, so a failed write is retried on the next tick with
the same events — nothing lost, nothing written twice. :meth:`UsageRecorder.aclose` stops
the task and writes everything still queued: a clean shutdown loses nothing.

With a :class:`~modelyard.usage.journal.UsageJournal` (the default in the application),
:meth:`UsageRecorder.record` first appends the event to this process's journal segment
(one ``write``, a few microseconds); the writer tells the journal what it committed, and
:meth:`UsageRecorder.start` writes what dead processes left in the journal before the
application serves (each event once: rows are inserted by their unique ``event_id``,
skipping ids already there). So a killed process loses no record; what a machine crash can
lose is the journal's ``fsync`` setting (see :mod:`modelyard.usage.journal`). The writer
also replays, every ``ORPHAN_SCAN_SECONDS``, the segments of workers that died while this
one lives. Without a journal, a crash loses what was queued (at most one flush interval
at a pace the database keeps up with).

The queue is bounded (``max_pending``). While it is full — the database has been failing
or is slower than the traffic for a long time — a journaled event stays on disk only
(counted in :attr:`UsageRecorder.spilled`; its segment is replayed from disk once the
writer catches up), and without a journal new events are dropped, counted in
:attr:`UsageRecorder.dropped` and logged (the first time and then every
``DROP_LOG_EVERY``-th): a request is never blocked or failed for its usage record.
Under a backlog the writer writes bigger batches (up to ``max_batch_size``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from dataclasses import fields
from itertools import islice
from typing import Any

from sqlalchemy import Insert, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from modelyard.db.types import utcnow
from modelyard.usage.events import UsageEvent
from modelyard.usage.journal import Orphan, UsageJournal, claim_orphans

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_PENDING", "MAX_BATCH_SIZE", "UsageRecorder"]

logger = logging.getLogger("modelyard.usage")

#: Events per transaction, and the queue length that triggers a write before the timer.
#: Building a batch's parameters holds the event loop for about 10-20 µs a row (measured
#: on 2 slow cores), so 100 rows keep that pause near 1-2 ms — invisible in the gateway's
#: p99 — while the writer still sustains well over 10,000 rows/s (see ``bench/usage.py``).
DEFAULT_BATCH_SIZE = 100
#: The biggest batch, written when a backlog has built up (a quarter of it at a time).
MAX_BATCH_SIZE = 1000
BACKLOG_SHARE = 4
#: Seconds between two looks for segments of dead processes while serving.
ORPHAN_SCAN_SECONDS = 10.0
#: Events held in memory at most; beyond that new events are dropped (and counted).
DEFAULT_MAX_PENDING = 100_000
#: A dropped event is logged the first time, then once every this many.
DROP_LOG_EVERY = 1000
#: Final write attempts at shutdown before the remaining events are given up.
CLOSE_ATTEMPTS = 3

_COLUMNS = frozenset(f.name for f in fields(UsageEvent))


def _insert_once(dialect: str) -> Insert:
    """The ``INSERT`` of usage rows that skips an ``event_id`` already there (on PostgreSQL
    it takes one array of values per column: see :func:`_parameters`)."""
    if dialect == "postgresql":
        table = UsageRecord.__table__
        names = sorted(_COLUMNS)
        arrays = [bindparam(name, type_=postgresql.ARRAY(table.c[name].type)) for name in names]
        rows = func.unnest(*arrays).table_valued(*names).render_derived(name="batch")
        return (
            postgresql.insert(UsageRecord)
            .from_select(names, select(*(rows.c[name] for name in names)))
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
    if dialect == "sqlite":
        return sqlite.insert(UsageRecord).on_conflict_do_nothing(index_elements=["event_id"])
    return insert(UsageRecord)


def _parameters(dialect: str, rows: list[dict[str, Any]]) -> Any:
    """The parameters of :func:`_insert_once`'s statement for ``rows``."""
    if dialect == "postgresql":
        return {name: [row[name] for row in rows] for name in _COLUMNS}
    return rows


def _row(event: UsageEvent) -> dict[str, Any]:
    """The event's column values (a copy of its fields: the fastest way there)."""
    values = dict(vars(event))
    if values.keys() != _COLUMNS:  # an attribute set on the event that is no column
        values = {name: values[name] for name in _COLUMNS}
    return values


def _describe(error: BaseException) -> str:
    """The failure, without the statement or its parameters (nor any URL)."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        first_line = str(error.orig).splitlines()[0] if str(error.orig) else ""
        return f"{type(error.orig).__name__}: {first_line[:200]}"
    return type(error).__name__


class UsageRecorder:
    """The batching writer of usage records; one per application.

    Counters: :attr:`written` (rows committed), :attr:`dropped` (events refused because the
    queue was full), :attr:`spilled` (events left in the journal only, the queue being
    full), :attr:`replayed` (events written from the journal segments of dead processes),
    :attr:`failed_writes` (transactions that failed and will be retried),
    :attr:`journal_failures` (events the journal could not take) and :attr:`pending`
    (events queued, not yet committed).
    """

    def __init__(
        self,
        database: Database,
        *,
        flush_interval: float = 1.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        journal: UsageJournal | None = None,
        max_batch_size: int = MAX_BATCH_SIZE,
    ) -> None:
        if flush_interval <= 0 or batch_size < 1 or max_pending < 1:
            raise ValueError("flush_interval, batch_size and max_pending must be positive")
        self.database = database
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_batch_size = max(batch_size, max_batch_size)
        self.max_pending = max_pending
        self.journal = journal
        self.written = 0
        self.dropped = 0
        self.spilled = 0
        self.replayed = 0
        self.failed_writes = 0
        self.journal_failures = 0
        #: Each queued event, and whether the journal holds it.
        self._queue: deque[tuple[UsageEvent, bool]] = deque()
        self._dialect = database.engine.dialect.name
        self._insert = _insert_once(self._dialect)
        self._scanned_at = 0.0
        self._synced_at = float("-inf")
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Events queued and not yet committed."""
        return len(self._queue)

    @property
    def oldest_pending_seconds(self) -> float:
        """How long the oldest queued event has waited (0 when none waits)."""
        if not self._queue:
            return 0.0
        return max(0.0, (utcnow() - self._queue[0][0].created_at).total_seconds())

    @property
    def running(self) -> bool:
        """Whether the background writer is running."""
        return self._task is not None and not self._task.done()

    def record(self, event: UsageEvent) -> None:
        """Journal and queue ``event``; never blocks and never touches the database."""
        journaled = self.journal is not None and self._journal(event)
        if len(self._queue) >= self.max_pending:
            if journaled:
                assert self.journal is not None
                self.journal.spill()
                self.spilled += 1
                return
            self.dropped += 1
            if (self.dropped - 1) % DROP_LOG_EVERY == 0:
                logger.error(
                    "Usage queue full (%d events waiting for the database): "
                    "%d usage records dropped so far",
                    len(self._queue),
                    self.dropped,
                )
            return
        self._queue.append((event, journaled))
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    def _journal(self, event: UsageEvent) -> bool:
        assert self.journal is not None
        try:
            self.journal.append(event)
        except OSError as error:
            self.journal_failures += 1
            if (self.journal_failures - 1) % DROP_LOG_EVERY == 0:
                logger.error(
                    "The usage journal in %s refused a record (%s): %d records so far are "
                    "held in memory only",
                    self.journal.directory,
                    error,
                    self.journal_failures,
                )
            return False
        return True

    async def start(self) -> None:
        """Start the background writer (called at application start)."""
        if self.running:
            return
        with contextlib.suppress(Exception):  # logged; tried again every ORPHAN_SCAN_SECONDS
            await self.replay_journal()
        self._scanned_at = time.monotonic()
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="modelyard-usage-writer")

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return  # aclose() writes the rest
            try:
                await self._write_queued()
                if self.journal is not None and (
                    time.monotonic() - self._scanned_at >= ORPHAN_SCAN_SECONDS
                    or (self.journal.has_spills and len(self._queue) < self.max_pending // 2)
                ):
                    self._scanned_at = time.monotonic()
                    await self.replay_journal()
            except Exception:
                # Logged in _write_batch; the events stay queued for the next tick. Wait a
                # full interval (ignoring the batch trigger) so a failing database is not
                # hammered by every new request.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.flush_interval)

    async def _write_queued(self) -> None:
        """Write what is queued now, batch by batch (later arrivals wait their turn)."""
        async with self._lock:
            remaining = len(self._queue)
            if remaining and self._sync_due():
                await self._sync_journal()
            while remaining > 0:
                size = max(self.batch_size, min(self.max_batch_size, remaining // BACKLOG_SHARE))
                remaining -= await self._write_batch(min(remaining, size))

    def _sync_due(self) -> bool:
        """Whether the journal's ``batch`` fsync is due: at most once a flush interval,
        however many batches a busy interval writes."""
        if self.journal is None or self.journal.fsync != "batch":
            return False
        return time.monotonic() - self._synced_at >= self.flush_interval

    async def _sync_journal(self) -> None:
        """``fsync`` the current journal segment in a thread (off the event loop)."""
        assert self.journal is not None
        fd = self.journal.fileno()
        if fd is None:
            return
        self._synced_at = time.monotonic()
        try:
            await asyncio.to_thread(os.fsync, fd)
        finally:
            os.close(fd)

    async def _write_batch(self, size: int) -> int:
        """Insert the ``size`` oldest events in one transaction, then unqueue them."""
        batch = list(islice(self._queue, size))
        rows = [_row(event) for event, _journaled in batch]
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(self._insert, _parameters(self._dialect, rows))
        except Exception as error:
            self.failed_writes += 1
            logger.warning(
                "Writing %d usage records failed (%s); %d events stay queued and are retried",
                len(rows),
                _describe(error),
                len(self._queue),
            )
            raise
        for _ in range(len(rows)):
            self._queue.popleft()
        self.written += len(rows)
        if self.journal is not None:
            self.journal.committed(sum(journaled for _event, journaled in batch))
        return len(rows)

    async def replay_journal(self) -> None:
        """Write the events of journal segments no live process holds (and this
        process's closed segments with spilled events), then delete those segments."""
        if self.journal is None:
            return
        for orphan in [*self.journal.closed_spills(), *claim_orphans(self.journal.directory)]:
            await self._replay(orphan)

    async def _replay(self, orphan: Orphan) -> None:
        events = orphan.events
        try:
            for start in range(0, len(events), self.max_batch_size):
                rows = [_row(event) for event in events[start : start + self.max_batch_size]]
                async with self.database.engine.begin() as connection:
                    await connection.execute(self._insert, _parameters(self._dialect, rows))
        except Exception as error:
            orphan.release(delete=False)
            self.failed_writes += 1
            logger.warning(
                "Replaying the usage journal %s failed (%s); it is retried later",
                orphan.path.name,
                _describe(error),
            )
            raise
        orphan.release(delete=True)
        self.replayed += len(events)
        self.written += len(events)
        logger.warning(
            "Wrote %d usage records left in the journal %s (%d lines were no record)",
            len(events),
            orphan.path.name,
            orphan.skipped,
        )

    async def flush(self) -> None:
        """Write every queued event now; raises when the database fails (events stay)."""
        await self._write_queued()

    async def aclose(self) -> None:
        """Stop the writer and write everything still queued (called at shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            self._wake.set()
            try:
                await task
            except Exception:  # pragma: no cover - _run handles its own errors
                logger.exception("The usage writer failed")
        failures = 0
        while self.pending and failures < CLOSE_ATTEMPTS:
            try:
                await self.flush()
            except Exception:
                failures += 1
                if failures < CLOSE_ATTEMPTS:
                    await asyncio.sleep(min(self.flush_interval, 0.5))
        if self.journal is not None:
            self.journal.close()
        if not self.pending:
            return
        if self.journal is not None:
            logger.error(
                "Shutting down with %d usage records not written: they stay in the journal "
                "%s and are written at the next start",
                self.pending,
                self.journal.directory,
            )
            return
        logger.error("Shutting down with %d usage records not written: they are lost", self.pending)
