"""A job's state from its provider, stored on its ``create`` command.

:func:`apply_job` writes one answer of the provider (status, result, error, model);
:func:`store_events` keeps each event once; :func:`sync_job` does a whole status check
(the job, then its events) as the background poller and ``refresh`` commands do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import FineTuneCommand, FineTuneEvent, Provider
from modelyard.db.types import utcnow
from modelyard.finetune.catalog import publish_model
from modelyard.finetune.errors import clean_text
from modelyard.finetune.inserts import insert_new
from modelyard.finetune.remote import TERMINAL_STATUSES, FineTuneClient, RemoteEvent, RemoteJob
from modelyard.security.redaction import MASK, redact

__all__ = [
    "apply_job",
    "fetch_events",
    "known_event_ids",
    "sanitized",
    "store_events",
    "sync_job",
]

#: Characters of one event message kept.
MAX_EVENT_MESSAGE = 4000


def sanitized(value: Any, key: str | None) -> Any:
    """``value`` (a provider's JSON answer) with the key and key-shaped strings masked."""
    if isinstance(value, str):
        if key and len(key) >= 4:
            value = value.replace(key, MASK)
        return redact(value)
    if isinstance(value, dict):
        return {str(k): sanitized(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitized(item, key) for item in value]
    return value


async def apply_job(
    session: AsyncSession, command: FineTuneCommand, job: RemoteJob, provider: Provider | None
) -> bool:
    """Store ``job`` on its ``create`` command (not committed); whether the catalog or the
    provider changed (a fine-tuned model was published)."""
    key = provider.api_key if provider is not None else None
    command.remote_job_id = job.id
    command.job_status = job.status
    command.result = sanitized(job.raw, key)
    command.synced_at = utcnow()
    command.sync_error = None
    if job.status == "failed" and job.error is not None:
        command.error_status = None
        command.error_code = job.error.code[:100] if job.error.code else None
        command.error_message = clean_text(job.error.message, key)
        command.error_param = job.error.param[:100] if job.error.param else None
    if job.status in TERMINAL_STATUSES and command.finished_at is None:
        command.finished_at = utcnow()
    published = False
    if job.status == "succeeded" and job.fine_tuned_model:
        if command.fine_tuned_model != job.fine_tuned_model or (
            provider is not None and provider.fine_tuned_model_id != job.fine_tuned_model
        ):
            published = await publish_model(session, command, provider, job.fine_tuned_model)
    if job.events:
        await store_events(session, command, job.events, key)
    return published


async def known_event_ids(session: AsyncSession, command: FineTuneCommand) -> set[str]:
    """The provider ids of the events stored for the job of ``command``."""
    return set(
        await session.scalars(
            select(FineTuneEvent.remote_id).where(FineTuneEvent.command_id == command.id)
        )
    )


async def store_events(
    session: AsyncSession,
    command: FineTuneCommand,
    events: Iterable[RemoteEvent],
    key: str | None,
) -> int:
    """Add the events not stored yet (oldest first; not committed); how many were new."""
    known = await known_event_ids(session, command)
    rows = []
    for event in events:
        if event.id in known:
            continue
        known.add(event.id)
        rows.append(
            {
                "command_id": command.id,
                "remote_id": event.id,
                "created_at": event.created_at,
                "level": event.level,
                "message": clean_text(event.message, key, limit=MAX_EVENT_MESSAGE),
                "data": sanitized(event.data, key) if event.data else None,
            }
        )
    await insert_new(session, FineTuneEvent, rows, ("command_id", "remote_id"))
    return len(rows)


async def sync_job(
    session: AsyncSession,
    command: FineTuneCommand,
    provider: Provider,
    client: FineTuneClient,
) -> bool:
    """Ask the provider for the job and its events and store both (not committed)."""
    assert command.remote_job_id is not None
    job = await client.get_job(command.remote_job_id)
    published = await apply_job(session, command, job, provider)
    if job.events is None:
        await fetch_events(session, command, client)
    return published


async def fetch_events(
    session: AsyncSession, command: FineTuneCommand, client: FineTuneClient
) -> tuple[int, int]:
    """Ask for the job's events and store the new ones (not committed): how many were
    read and how many were new."""
    assert command.remote_job_id is not None
    known = await known_event_ids(session, command)
    events = await client.list_events(command.remote_job_id, known=known)
    return len(events), await store_events(session, command, events, client.api_key)
