"""Training files: checked with the provider's rules, uploaded, recorded; and deleted.

An upload goes to the provider fine-tuning runs on (the active default, else the first
active one). The staged copy is checked as a whole before anything is sent, and removed
in every case: the provider holds the content, the record its summary and remote id. A
bad file, a refused upload or a failed write leaves no record behind (a remote file
uploaded just before a failed write is deleted again).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.audit import record_audit
from modelyard.db.models import FineTuneFile, Provider, User
from modelyard.errors import NotFoundError
from modelyard.finetune.errors import ProviderFailure
from modelyard.finetune.runtime import Runtime, active_provider
from modelyard.finetune.validation import check_filename, rules_for, validate_training_file

__all__ = [
    "delete_training_file",
    "get_training_file",
    "list_training_files",
    "stage_path",
    "upload_training_file",
]

logger = logging.getLogger("modelyard.finetune")


def stage_path(data_dir: Path, filename: str) -> Path:
    """A fresh staging path for an upload of ``filename`` (checked to be JSONL first)."""
    check_filename(filename)
    directory = data_dir / "finetune"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f".upload-{uuid.uuid4().hex}.jsonl"


async def get_training_file(session: AsyncSession, file_id: int) -> FineTuneFile:
    record = await session.get(FineTuneFile, file_id)
    if record is None:
        raise NotFoundError(f"No training file {file_id}.")
    return record


async def list_training_files(session: AsyncSession, *, limit: int = 100) -> Sequence[FineTuneFile]:
    """Training files, newest first."""
    statement = select(FineTuneFile).order_by(FineTuneFile.id.desc()).limit(limit)
    return (await session.scalars(statement)).all()


async def upload_training_file(
    session: AsyncSession,
    *,
    staged: Path,
    filename: str,
    actor: User | None,
    runtime: Runtime,
) -> FineTuneFile:
    """Check ``staged`` (removed in every case), upload it and record it."""
    try:
        check_filename(filename)
        provider = await active_provider(session)
        client = runtime.client(provider)
        rules = rules_for(provider.kind, max_file_bytes=runtime.max_file_bytes)
        summary = await asyncio.to_thread(validate_training_file, staged, rules)
        remote = await client.upload_file(staged, Path(filename).name)
        record = FineTuneFile(
            created_by_id=actor.id if actor else None,
            provider_id=provider.id,
            provider_kind=provider.kind,
            provider_name=provider.name,
            filename=Path(filename).name[:255],
            purpose="fine-tune",
            sha256=summary.sha256,
            size_bytes=summary.size_bytes,
            num_examples=summary.num_examples,
            remote_id=remote.id,
            remote_status=remote.status,
            status_detail=remote.detail,
        )
        try:
            session.add(record)
            await session.flush()
            record_audit(
                session,
                actor=actor,
                action="upload",
                entity_type="finetune_file",
                entity_id=record.id,
                entity_name=str(record),
                detail=f"{summary.num_examples} examples to {provider.name}",
            )
            await session.commit()
        except BaseException:
            await session.rollback()
            await _forget_remote(runtime, provider, remote.id)
            raise
        return record
    finally:
        await asyncio.to_thread(staged.unlink, missing_ok=True)


async def _forget_remote(runtime: Runtime, provider: Provider, remote_id: str) -> None:
    try:
        await runtime.client(provider).delete_file(remote_id)
    except ProviderFailure as exc:
        logger.warning("Could not delete the orphaned remote file %s: %s", remote_id, exc.message)


async def delete_training_file(
    session: AsyncSession, *, record: FineTuneFile, actor: User | None, runtime: Runtime
) -> None:
    """Delete the file at its provider (already gone there is fine), then the record.

    When the provider was deleted meanwhile, only the record goes."""
    provider = await session.get(Provider, record.provider_id) if record.provider_id else None
    if provider is not None:
        try:
            await runtime.client(provider).delete_file(record.remote_id)
        except ProviderFailure as exc:
            if exc.provider_status != 404:
                raise
    record_audit(
        session,
        actor=actor,
        action="delete",
        entity_type="finetune_file",
        entity_id=record.id,
        entity_name=str(record),
    )
    await session.delete(record)
    await session.commit()
