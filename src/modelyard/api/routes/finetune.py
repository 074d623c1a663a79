"""Fine-tuning through provider APIs: ``/v2/finetune/files`` and ``/v2/finetune/commands``.

Staff only (403 for other accounts): uploads and jobs run on the admin's default provider
and spend its money. A training file is checked with the provider's rules (400 listing
every problem by line, nothing sent) and uploaded to the provider. ``POST …/commands``
creates a command and runs it at once: ``create`` starts a job, ``refresh``, ``cancel``
and ``list_events`` act on the job of a ``create`` command. A command that cannot run
(no provider, a file of another provider, …) is refused without being stored; a provider
failure is stored on the command and answered with the provider's code and message (400
when the provider refused the request, 502 for its key, quota or outage) and
``error.command_id``, so the command can be fixed and run again (``…/{id}/run``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile

from modelyard.api.deps import SessionDep, SettingsDep, StaffUser, app_state
from modelyard.api.uploads import save_upload
from modelyard.db.models import User
from modelyard.finetune import commands, files
from modelyard.finetune.runtime import Runtime
from modelyard.finetune.schemas import (
    CommandCreate,
    CommandPublic,
    CommandType,
    EventPublic,
    FilePublic,
)

__all__ = ["router"]

router = APIRouter(prefix="/v2/finetune", tags=["fine-tuning"])


def _runtime(request: Request) -> Runtime:
    state = app_state(request)
    return Runtime.from_settings(state.settings, state.gateway.http)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


@router.post("/files", status_code=201)
async def upload_file(
    staff: StaffUser,
    session: SessionDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="A .jsonl file in the chat format")],
) -> FilePublic:
    """Check a training file with the provider's rules, then upload it to the provider."""
    filename = file.filename or ""
    staged = await save_upload(file, files.stage_path(settings.data_dir.resolve(), filename))
    record = await files.upload_training_file(
        session, staged=staged, filename=filename, actor=staff, runtime=runtime
    )
    return FilePublic.of(record)


@router.get("/files")
async def list_files(
    _staff: StaffUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, list[FilePublic]]:
    """Training files, newest first."""
    records = await files.list_training_files(session, limit=limit)
    return {"data": [FilePublic.of(record) for record in records]}


@router.get("/files/{file_id}")
async def show_file(file_id: int, _staff: StaffUser, session: SessionDep) -> FilePublic:
    return FilePublic.of(await files.get_training_file(session, file_id))


@router.delete("/files/{file_id}", status_code=204)
async def delete_file(
    file_id: int, staff: StaffUser, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Delete the file at its provider, then here."""
    record = await files.get_training_file(session, file_id)
    await files.delete_training_file(session, record=record, actor=staff, runtime=runtime)
    return Response(status_code=204)


def _published(request: Request, published: bool) -> None:
    if published:
        app_state(request).gateway.invalidate()  # the fine-tuned model routes at once


@router.post("/commands", status_code=201)
async def create_command(
    body: CommandCreate,
    request: Request,
    staff: StaffUser,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CommandPublic:
    """Create a command and run it on its provider."""
    command, published = await commands.submit(session, spec=body, runtime=runtime, actor=staff)
    _published(request, published)
    return CommandPublic.of(command)


@router.get("/commands")
async def list_commands(
    _staff: StaffUser,
    session: SessionDep,
    type: Annotated[CommandType | None, Query(description="Only commands of this type")] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, list[CommandPublic]]:
    """Commands, newest first."""
    found = await commands.list_commands(session, command_type=type, state=state, limit=limit)
    return {"data": [CommandPublic.of(command) for command in found]}


@router.get("/commands/{command_id}")
async def show_command(command_id: int, _staff: StaffUser, session: SessionDep) -> CommandPublic:
    return CommandPublic.of(await commands.get_command(session, command_id))


@router.post("/commands/{command_id}/run")
async def run_command(
    command_id: int, request: Request, staff: StaffUser, session: SessionDep, runtime: RuntimeDep
) -> CommandPublic:
    """Run a pending or failed command (409 once it has run)."""
    command = await commands.get_command(session, command_id)
    published = await commands.run_command(session, command, runtime=runtime, actor=staff)
    _published(request, published)
    return CommandPublic.of(command)


async def _act_on_job(
    command_type: CommandType,
    command_id: int,
    request: Request,
    staff: User,
    session: SessionDep,
    runtime: Runtime,
) -> CommandPublic:
    job_command, published = await commands.act_on_job(
        session,
        command_type=command_type,
        command=await commands.get_command(session, command_id),
        runtime=runtime,
        actor=staff,
    )
    _published(request, published)
    return CommandPublic.of(job_command)


@router.post("/commands/{command_id}/refresh")
async def refresh_job(
    command_id: int, request: Request, staff: StaffUser, session: SessionDep, runtime: RuntimeDep
) -> CommandPublic:
    """Ask the provider for the job's status and events now (a ``refresh`` command);
    answers the job's ``create`` command, updated."""
    return await _act_on_job("refresh", command_id, request, staff, session, runtime)


@router.post("/commands/{command_id}/cancel")
async def cancel_job(
    command_id: int, request: Request, staff: StaffUser, session: SessionDep, runtime: RuntimeDep
) -> CommandPublic:
    """Cancel the job (a ``cancel`` command); answers the job's ``create`` command."""
    return await _act_on_job("cancel", command_id, request, staff, session, runtime)


@router.get("/commands/{command_id}/events")
async def job_events(
    command_id: int,
    request: Request,
    staff: StaffUser,
    session: SessionDep,
    runtime: RuntimeDep,
    refresh: Annotated[bool, Query(description="Fetch new events from the provider first")] = False,
) -> dict[str, list[EventPublic]]:
    """The job's events, oldest first (kept up to date by the background sync)."""
    command = await commands.get_command(session, command_id)
    if refresh:
        await _act_on_job("list_events", command_id, request, staff, session, runtime)
    events = await commands.list_events(session, command)
    return {"data": [EventPublic.of(event) for event in events]}
