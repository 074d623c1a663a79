"""Checking a command before it runs: everything but the provider call.

:func:`prepare` finds the provider (the active default, else the first active one, for
``create``; the job's own provider otherwise), its client, the files and the base model,
and refuses what cannot run with a clear 4xx: a file uploaded to another provider, no
base model, a job that has not started or has ended already.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import FineTuneCommand, FineTuneFile, Provider
from modelyard.errors import BadRequestError, ConflictError
from modelyard.finetune.remote import TERMINAL_STATUSES, FineTuneClient, JobSpec
from modelyard.finetune.runtime import Runtime, active_provider, job_provider
from modelyard.finetune.schemas import CommandCreate, FineTuneParams

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """Everything a command needs before the provider is called."""

    provider: Provider
    client: FineTuneClient
    #: ``create``: the job to create.
    spec: JobSpec | None = None
    #: ``refresh``, ``cancel``, ``list_events``: the job's ``create`` command.
    job_command: FineTuneCommand | None = None


async def _file(session: AsyncSession, file_id: int | None, what: str) -> FineTuneFile | None:
    if file_id is None:
        return None
    record = await session.get(FineTuneFile, file_id)
    if record is None:
        raise BadRequestError(
            f"No {what} file {file_id}: upload it with POST /v2/finetune/files first.",
            param=f"{what}_file_id",
            code="file_not_found",
        )
    return record


def _same_provider(record: FineTuneFile, provider: Provider, what: str) -> None:
    if record.provider_id != provider.id:
        raise ConflictError(
            f"The {what} file {record.id} was uploaded to provider {record.provider_name!r}, "
            f"but fine-tuning now runs on {provider.name!r} (the "
            f"{'default' if provider.is_default else 'first active'} provider): upload the "
            "file again (POST /v2/finetune/files) and use the new file.",
            param=f"{what}_file_id",
            code="file_on_other_provider",
        )


async def _prepare_create(
    session: AsyncSession, command: FineTuneCommand | CommandCreate, runtime: Runtime
) -> Prepared:
    provider = await active_provider(session)
    client = runtime.client(provider)
    training = await _file(session, command.training_file_id, "training")
    if training is None:
        raise BadRequestError("A create command needs a training file.", param="training_file_id")
    validation = await _file(session, command.validation_file_id, "validation")
    for record, what in ((training, "training"), (validation, "validation")):
        if record is not None:
            _same_provider(record, provider, what)
    model = command.model or provider.base_model
    if not model:
        raise BadRequestError(
            f"Name the base model to fine-tune (model), or set provider {provider.name!r}'s "
            "base model in /admin.",
            param="model",
            code="missing_model",
        )
    data = command.data if isinstance(command.data, FineTuneParams) else command.data or {}
    params = FineTuneParams.model_validate(data)
    spec = JobSpec(
        model=model,
        training_file=training.remote_id,
        validation_file=validation.remote_id if validation else None,
        hyperparameters=params.hyperparameters(),
        suffix=params.suffix,
        seed=params.seed,
    )
    return Prepared(provider, client, spec=spec)


async def prepare(
    session: AsyncSession, command: FineTuneCommand | CommandCreate, runtime: Runtime
) -> Prepared:
    """Check a command (new or stored) without calling the provider: 4xx when it cannot run."""
    kind = command.command_type if isinstance(command, FineTuneCommand) else command.type
    if kind == "create":
        return await _prepare_create(session, command, runtime)
    if command.job_command_id is None:
        raise BadRequestError(f"A {kind} command needs job_command_id.", param="job_command_id")
    job_command = await session.get(FineTuneCommand, command.job_command_id)
    if job_command is None or job_command.command_type != "create":
        raise BadRequestError(
            f"Command {command.job_command_id} is not a create command; name the command "
            "that created the job.",
            param="job_command_id",
            code="not_a_job",
        )
    if job_command.remote_job_id is None:
        raise ConflictError(
            f"Command {job_command.id} has no job yet ({job_command.state}); run it first.",
            code="no_job_yet",
        )
    if kind == "cancel" and job_command.job_status in TERMINAL_STATUSES:
        raise ConflictError(
            f"The job of command {job_command.id} has {job_command.job_status} already; "
            "there is nothing to cancel.",
            code="job_finished",
        )
    provider = await job_provider(session, job_command.provider_id, job_command.provider_name)
    return Prepared(provider, runtime.client(provider), job_command=job_command)
