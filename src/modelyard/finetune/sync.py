"""The background status sync: unfinished provider jobs are checked every few seconds.

One small asyncio task per app process (started and stopped by the app's lifespan, like
the training runner) looks at every ``create`` command whose job has not finished, every
``MODELYARD_FINETUNE_POLL_SECONDS``: it stores the job's status, result and new events,
and, when a job succeeds, publishes the fine-tuned model and refreshes the gateway's
caches so the model answers at once. A failed check is kept on the command
(``sync_error``) and tried again at the next tick. Several processes may poll the same
jobs: events are stored once, and the last answer wins.

Apps built without a lifespan (the tests) get the service on first use and call
:meth:`FineTuneSync.tick` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from fastapi import FastAPI
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from modelyard.db.engine import Database
from modelyard.db.models import FineTuneCommand
from modelyard.errors import ModelyardError
from modelyard.finetune.errors import clean_text
from modelyard.finetune.jobs import sync_job
from modelyard.finetune.remote import TERMINAL_STATUSES
from modelyard.finetune.runtime import Runtime, job_provider

__all__ = ["FineTuneSync", "finetune_sync", "start_finetune", "stop_finetune"]

logger = logging.getLogger("modelyard.finetune")

#: Jobs checked at most per tick (the least recently checked first).
MAX_JOBS_PER_TICK = 50


class FineTuneSync:
    """Checks unfinished jobs every ``interval`` seconds (0: only when asked)."""

    def __init__(
        self,
        database: Database,
        runtime: Runtime,
        *,
        interval: float,
        on_publish: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.runtime = runtime
        self.interval = interval
        self.on_publish = on_publish
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def unfinished(self) -> Sequence[int]:
        """Ids of the ``create`` commands whose job may still change."""
        async with self.database.sessions() as session:
            statement = (
                select(FineTuneCommand.id)
                .where(
                    FineTuneCommand.command_type == "create",
                    FineTuneCommand.state == "done",
                    FineTuneCommand.remote_job_id.is_not(None),
                    or_(
                        FineTuneCommand.job_status.is_(None),
                        FineTuneCommand.job_status.not_in(TERMINAL_STATUSES),
                    ),
                )
                .order_by(FineTuneCommand.synced_at.is_not(None), FineTuneCommand.synced_at)
                .limit(MAX_JOBS_PER_TICK)
            )
            return (await session.scalars(statement)).all()

    async def check(self, command_id: int) -> bool:
        """Sync one job; whether a model was published. Failures are stored, not raised."""
        async with self.database.sessions() as session:
            command = await session.get(FineTuneCommand, command_id)
            if command is None:
                return False
            try:
                provider = await job_provider(session, command.provider_id, command.provider_name)
                published = await sync_job(
                    session, command, provider, self.runtime.client(provider)
                )
                await session.commit()
            except ModelyardError as exc:
                await session.rollback()
                reason = clean_text(exc.message)
                await session.execute(
                    update(FineTuneCommand)
                    .where(FineTuneCommand.id == command_id)
                    .values(sync_error=reason)
                )
                await session.commit()
                logger.warning("Fine-tuning job of command %s: %s", command_id, reason)
                return False
            except IntegrityError:
                await session.rollback()  # another process stored the same answer first
                return False
        if published:
            self.on_publish()
        return published

    async def tick(self) -> int:
        """Check every unfinished job once; how many were checked."""
        ids = await self.unfinished()
        for command_id in ids:
            await self.check(command_id)
        return len(ids)

    def wake(self) -> None:
        """Check now rather than at the next interval."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                logger.exception("The fine-tuning status sync failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    def start(self) -> None:
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="finetune-sync")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def finetune_sync(app: FastAPI) -> FineTuneSync:
    """The app's status sync (created on first use)."""
    service: FineTuneSync | None = getattr(app.state, "finetune", None)
    if service is None:
        state = app.state.modelyard
        service = FineTuneSync(
            state.database,
            Runtime.from_settings(state.settings, state.gateway.http),
            interval=state.settings.finetune_poll_seconds,
            on_publish=state.gateway.invalidate,
        )
        app.state.finetune = service
    return service


async def start_finetune(app: FastAPI) -> FineTuneSync:
    """Start the background sync (nothing when the interval is 0)."""
    service = finetune_sync(app)
    service.start()
    return service


async def stop_finetune(app: FastAPI) -> None:
    service: FineTuneSync | None = getattr(app.state, "finetune", None)
    if service is not None:
        await service.aclose()
