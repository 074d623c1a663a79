"""Fine-tuning commands: create one, run it on its provider, keep what happened.

A command is ``pending`` until it runs, then ``done`` or ``failed``; a failed one can be
run again (a ``running`` one is claimed by a single runner, so one command never creates
two jobs). ``create`` runs on the active default provider (else the first active one)
and starts a job there; ``refresh``, ``cancel`` and ``list_events`` act on the job of a
``create`` command, on the provider it was created on. Every failure is stored on the
command (the provider's status, code, message and parameter) and raised again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.audit import record_audit
from modelyard.db.models import FineTuneCommand, FineTuneEvent, User
from modelyard.db.types import utcnow
from modelyard.errors import ConflictError, ModelyardError, NotFoundError
from modelyard.finetune.errors import ProviderFailure, clean_text
from modelyard.finetune.jobs import apply_job, fetch_events, sanitized, sync_job
from modelyard.finetune.preparation import Prepared, prepare
from modelyard.finetune.runtime import Runtime
from modelyard.finetune.schemas import CommandCreate, CommandType

__all__ = [
    "act_on_job",
    "create_command",
    "get_command",
    "job_command_of",
    "list_commands",
    "list_events",
    "run_command",
    "submit",
]

#: A ``running`` command untouched for this long (after the call's timeout) may be
#: claimed again: its runner died.
STALE_RUN_GRACE = timedelta(seconds=60)


async def get_command(session: AsyncSession, command_id: int) -> FineTuneCommand:
    command = await session.get(FineTuneCommand, command_id)
    if command is None:
        raise NotFoundError(f"No fine-tuning command {command_id}.")
    return command


async def job_command_of(session: AsyncSession, command: FineTuneCommand) -> FineTuneCommand:
    """The ``create`` command whose job ``command`` is about (itself for ``create``)."""
    if command.command_type == "create":
        return command
    if command.job_command_id is None:
        raise ConflictError(
            f"Command {command.id}'s job command was deleted.", code="job_command_deleted"
        )
    return await get_command(session, command.job_command_id)


async def list_commands(
    session: AsyncSession,
    *,
    command_type: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> Sequence[FineTuneCommand]:
    """Commands, newest first."""
    statement = select(FineTuneCommand)
    if command_type:
        statement = statement.where(FineTuneCommand.command_type == command_type)
    if state:
        statement = statement.where(FineTuneCommand.state == state)
    statement = statement.order_by(FineTuneCommand.id.desc()).limit(limit)
    return (await session.scalars(statement)).all()


async def list_events(session: AsyncSession, command: FineTuneCommand) -> Sequence[FineTuneEvent]:
    """The stored events of the job of ``command``, oldest first."""
    job_command = await job_command_of(session, command)
    statement = (
        select(FineTuneEvent)
        .where(FineTuneEvent.command_id == job_command.id)
        .order_by(FineTuneEvent.id)
    )
    return (await session.scalars(statement)).all()


async def create_command(
    session: AsyncSession, *, actor: User | None, spec: CommandCreate
) -> FineTuneCommand:
    """Store a ``pending`` command (call :func:`prepare` first to refuse bad ones)."""
    command = FineTuneCommand(
        created_by_id=actor.id if actor else None,
        command_type=spec.type,
        state="pending",
        training_file_id=spec.training_file_id,
        validation_file_id=spec.validation_file_id,
        job_command_id=spec.job_command_id,
        model=spec.model,
        data=spec.data.model_dump(exclude_none=True),
    )
    session.add(command)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="create",
        entity_type="finetune_command",
        entity_id=command.id,
        entity_name=str(command),
    )
    await session.commit()
    return command


async def _claim(session: AsyncSession, command: FineTuneCommand, runtime: Runtime) -> None:
    """Mark the command ``running``, unless it ran already or runs elsewhere (409)."""
    stale = utcnow() - timedelta(seconds=runtime.timeout) - STALE_RUN_GRACE
    claimed = await session.execute(
        update(FineTuneCommand)
        .where(
            FineTuneCommand.id == command.id,
            or_(
                FineTuneCommand.state.in_(("pending", "failed")),
                and_(FineTuneCommand.state == "running", FineTuneCommand.updated_at < stale),
            ),
        )
        .values(state="running", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    await session.refresh(command)
    if getattr(claimed, "rowcount", 0) != 1:
        raise ConflictError(
            f"Command {command.id} is {command.state}: "
            + (
                "it ran already; create a new command to do it again."
                if command.state == "done"
                else "it is running right now."
            ),
            code="command_not_runnable",
        )


def _fail(command: FineTuneCommand, error: ModelyardError, key: str | None) -> None:
    command.state = "failed"
    command.ran_at = utcnow()
    if isinstance(error, ProviderFailure):
        command.error_status = error.provider_status
        command.error_code = (error.provider_code or "provider_error")[:100]
        command.error_message = clean_text(error.provider_message, key)
        command.error_param = error.provider_param[:100] if error.provider_param else None
    else:
        command.error_status = None
        command.error_code = (error.code or type(error).__name__)[:100]
        command.error_message = clean_text(error.message, key)
        command.error_param = error.param[:100] if error.param else None


def _clear_error(command: FineTuneCommand) -> None:
    command.error_status = command.error_code = None
    command.error_message = command.error_param = None


async def _execute(session: AsyncSession, command: FineTuneCommand, ready: Prepared) -> bool:
    """Call the provider for ``command``; whether a fine-tuned model was published."""
    provider, client = ready.provider, ready.client
    command.provider_id, command.provider_name = provider.id, provider.name
    command.provider_kind = provider.kind
    if ready.spec is not None:
        command.model = ready.spec.model
        command.request = ready.spec.body()
        job = await client.create_job(ready.spec)
        _clear_error(command)
        return await apply_job(session, command, job, provider)
    job_command = ready.job_command
    assert job_command is not None and job_command.remote_job_id is not None
    try:
        if command.command_type == "refresh":
            published = await sync_job(session, job_command, provider, client)
            command.result = {"job_status": job_command.job_status, "job": job_command.result}
            return published
        if command.command_type == "cancel":
            job = await client.cancel_job(job_command.remote_job_id)
            published = await apply_job(session, job_command, job, provider)
            command.result = {"job_status": job.status, "job": sanitized(job.raw, client.api_key)}
            if job.events is None:
                await fetch_events(session, job_command, client)
            return published
        read, added = await fetch_events(session, job_command, client)
        command.result = {"events": read, "new_events": added}
        return False
    except ProviderFailure as exc:
        job_command.sync_error = clean_text(exc.message, client.api_key)
        raise


async def run_command(
    session: AsyncSession, command: FineTuneCommand, *, runtime: Runtime, actor: User | None
) -> bool:
    """Run a ``pending`` (or ``failed``) command; whether the catalog changed (refresh
    the gateway's caches then). Failures are stored on the command and raised, a
    provider's with ``command_id`` set."""
    await _claim(session, command, runtime)
    key: str | None = None
    try:
        ready = await prepare(session, command, runtime)
        key = ready.provider.api_key
        published = await _execute(session, command, ready)
    except ModelyardError as exc:
        _fail(command, exc, key)
        if isinstance(exc, ProviderFailure):
            exc.command_id = command.id
        await session.commit()
        raise
    except BaseException as exc:
        await session.rollback()
        await session.execute(
            update(FineTuneCommand)
            .where(FineTuneCommand.id == command.id)
            .values(
                state="failed",
                error_code="interrupted",
                error_message=f"The run stopped ({type(exc).__name__}); run the command again.",
            )
        )
        await session.commit()
        raise
    command.state = "done"
    command.ran_at = utcnow()
    if command.command_type != "create":
        _clear_error(command)
    record_audit(
        session,
        actor=actor,
        action="run",
        entity_type="finetune_command",
        entity_id=command.id,
        entity_name=str(command),
        detail=_summary(command),
    )
    await session.commit()
    return published


def _summary(command: FineTuneCommand) -> str:
    job = f", job {command.remote_job_id}" if command.remote_job_id else ""
    return f"on {command.provider_name}{job}"


async def submit(
    session: AsyncSession, *, spec: CommandCreate, runtime: Runtime, actor: User | None
) -> tuple[FineTuneCommand, bool]:
    """Check, store and run a command: the command, and whether the catalog changed.

    A command that cannot run is refused before it is stored; one the provider refuses
    is stored as ``failed`` and the error raised."""
    await prepare(session, spec, runtime)
    command = await create_command(session, actor=actor, spec=spec)
    published = await run_command(session, command, runtime=runtime, actor=actor)
    return command, published


async def act_on_job(
    session: AsyncSession,
    *,
    command_type: CommandType,
    command: FineTuneCommand,
    runtime: Runtime,
    actor: User | None,
) -> tuple[FineTuneCommand, bool]:
    """Run a ``refresh``, ``cancel`` or ``list_events`` command on the job of ``command``:
    the job's ``create`` command (updated), and whether the catalog changed."""
    job_command = await job_command_of(session, command)
    spec = CommandCreate(type=command_type, job_command_id=job_command.id)
    _command, published = await submit(session, spec=spec, runtime=runtime, actor=actor)
    await session.refresh(job_command)
    return job_command, published
