"""``modelyard finetune``: fine-tuning through provider APIs from the command line.

``files upload|list|delete`` manage training files at the provider; ``run`` starts a job
on the active default provider; ``status``, ``cancel`` and ``events`` act on the job of
a ``create`` command (asking the provider first); ``list`` shows the commands. The same
service as the API and the admin runs here, against the configured database.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.table import Table

from modelyard.cli.common import console, err_console, require_migrated, settings_from_env
from modelyard.config import Settings
from modelyard.db.engine import Database, create_database
from modelyard.db.models import FineTuneCommand
from modelyard.errors import ModelyardError
from modelyard.finetune import commands, files
from modelyard.finetune.runtime import Runtime
from modelyard.finetune.schemas import CommandCreate, CommandType
from modelyard.gateway.http import UpstreamHttp

__all__ = ["app"]

app = typer.Typer(help="Fine-tuning through provider APIs.", no_args_is_help=True)
files_app = typer.Typer(help="Training files at the provider.", no_args_is_help=True)
app.add_typer(files_app, name="files")

T = TypeVar("T")
Work = Callable[[Database, Runtime], Awaitable[T]]


def _run(work: Work[T], settings: Settings | None = None) -> T:
    """Run ``work`` with a database and the provider HTTP session; errors exit 1."""
    settings = settings or settings_from_env()
    require_migrated(settings)

    async def runner() -> T:
        database = create_database(settings)
        http = UpstreamHttp()
        try:
            return await work(database, Runtime.from_settings(settings, http))
        finally:
            await http.aclose()
            await database.dispose()

    try:
        return asyncio.run(runner())
    except ModelyardError as exc:
        err_console.print(f"[red]Error:[/red] {exc.message}", highlight=False)
        for issue in (getattr(exc, "issues", None) or [])[1:]:
            err_console.print(f"  {issue}", highlight=False)
        raise typer.Exit(1) from None


def _show(command: FineTuneCommand) -> None:
    console.print(
        f"Command {command.id} ({command.command_type}): [bold]{command.state}[/bold]"
        + (f" on {command.provider_name}" if command.provider_name else ""),
        highlight=False,
    )
    if command.remote_job_id:
        console.print(
            f"Job {command.remote_job_id}: [bold]{command.job_status}[/bold]", highlight=False
        )
    if command.fine_tuned_model:
        console.print(
            f"Fine-tuned model: [bold]{command.fine_tuned_model}[/bold] (use it as the model "
            "name in /v1/chat/completions)",
            highlight=False,
        )
    if command.error_message:
        status = f"HTTP {command.error_status} " if command.error_status else ""
        console.print(
            f"[red]Error:[/red] {status}{command.error_code or ''}: {command.error_message}",
            highlight=False,
        )
    if command.sync_error:
        console.print(f"Last status check failed: {command.sync_error}", highlight=False)


@files_app.command("upload")
def upload(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .jsonl file."),
) -> None:
    """Check a training file with the provider's rules and upload it."""

    settings = settings_from_env()

    async def work(database: Database, runtime: Runtime) -> Any:
        staged = files.stage_path(settings.data_dir.resolve(), path.name)
        await asyncio.to_thread(shutil.copyfile, path, staged)
        async with database.sessions() as session:
            return await files.upload_training_file(
                session, staged=staged, filename=path.name, actor=None, runtime=runtime
            )

    record = _run(work, settings)
    console.print(
        f"Training file {record.id}: {record.num_examples} examples uploaded to "
        f"{record.provider_name} as {record.remote_id} ({record.remote_status}).",
        highlight=False,
    )


@files_app.command("list")
def list_files() -> None:
    """Training files, newest first."""

    async def work(database: Database, _runtime: Runtime) -> Any:
        async with database.sessions() as session:
            return await files.list_training_files(session)

    table = Table("id", "file", "examples", "provider", "remote id", "status", "uploaded")
    for record in _run(work):
        table.add_row(
            str(record.id),
            record.filename,
            str(record.num_examples),
            record.provider_name,
            record.remote_id,
            record.remote_status or "-",
            f"{record.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@files_app.command("delete")
def delete_file(file_id: int) -> None:
    """Delete a training file at its provider and here."""

    async def work(database: Database, runtime: Runtime) -> None:
        async with database.sessions() as session:
            record = await files.get_training_file(session, file_id)
            await files.delete_training_file(session, record=record, actor=None, runtime=runtime)

    _run(work)
    console.print(f"Training file {file_id} deleted.")


@app.command("run")
def run(
    training_file: int = typer.Option(..., "--file", help="The training file's id."),
    validation_file: int | None = typer.Option(None, "--validation-file", help="File id."),
    model: str | None = typer.Option(None, help="Base model (default: the provider's)."),
    epochs: int | None = typer.Option(None, help="n_epochs (default: the provider's)."),
    batch_size: int | None = typer.Option(None, help="batch_size."),
    lr_multiplier: float | None = typer.Option(None, help="learning_rate_multiplier."),
    suffix: str | None = typer.Option(None, help="Part of the fine-tuned model's name."),
    seed: int | None = typer.Option(None, help="Seed."),
) -> None:
    """Start a fine-tuning job on the active default provider."""
    data = {
        "n_epochs": epochs,
        "batch_size": batch_size,
        "learning_rate_multiplier": lr_multiplier,
        "suffix": suffix,
        "seed": seed,
    }
    try:
        spec = CommandCreate.model_validate(
            {
                "type": "create",
                "training_file_id": training_file,
                "validation_file_id": validation_file,
                "model": model,
                "data": {k: v for k, v in data.items() if v is not None},
            }
        )
    except ValueError as exc:
        err_console.print(f"[red]Error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None

    async def work(database: Database, runtime: Runtime) -> FineTuneCommand:
        async with database.sessions() as session:
            command, _published = await commands.submit(
                session, spec=spec, runtime=runtime, actor=None
            )
            return command

    _show(_run(work))


def _act(command_type: CommandType, command_id: int) -> FineTuneCommand:
    async def work(database: Database, runtime: Runtime) -> FineTuneCommand:
        async with database.sessions() as session:
            job, _published = await commands.act_on_job(
                session,
                command_type=command_type,
                command=await commands.get_command(session, command_id),
                runtime=runtime,
                actor=None,
            )
            return job

    return _run(work)


@app.command("status")
def status(
    command_id: int,
    refresh: bool = typer.Option(True, help="Ask the provider first (a refresh command)."),
) -> None:
    """A job's status (from the provider, unless --no-refresh)."""
    if refresh:
        _show(_act("refresh", command_id))
        return

    async def work(database: Database, _runtime: Runtime) -> FineTuneCommand:
        async with database.sessions() as session:
            command = await commands.get_command(session, command_id)
            return await commands.job_command_of(session, command)

    _show(_run(work))


@app.command("cancel")
def cancel(command_id: int) -> None:
    """Cancel the job of a create command."""
    _show(_act("cancel", command_id))


@app.command("events")
def events(
    command_id: int,
    refresh: bool = typer.Option(True, help="Fetch new events from the provider first."),
) -> None:
    """A job's events, oldest first."""

    async def work(database: Database, runtime: Runtime) -> Any:
        async with database.sessions() as session:
            command = await commands.get_command(session, command_id)
            if refresh:
                await commands.act_on_job(
                    session,
                    command_type="list_events",
                    command=command,
                    runtime=runtime,
                    actor=None,
                )
            return await commands.list_events(session, command)

    for event in _run(work):
        when = f"{event.created_at:%Y-%m-%d %H:%M:%S}" if event.created_at else "-"
        console.print(f"{when} {event.level:<7} {event.message}", highlight=False)


@app.command("list")
def list_commands(
    command_type: str | None = typer.Option(None, "--type", help="create, refresh, …"),
) -> None:
    """Fine-tuning commands, newest first."""

    async def work(database: Database, _runtime: Runtime) -> Any:
        async with database.sessions() as session:
            return await commands.list_commands(session, command_type=command_type)

    table = Table("id", "type", "state", "provider", "job", "job status", "model", "error")
    for command in _run(work):
        table.add_row(
            str(command.id),
            command.command_type,
            command.state,
            command.provider_name or "-",
            command.remote_job_id or "-",
            command.job_status or "-",
            command.fine_tuned_model or "-",
            command.error_code or "",
        )
    console.print(table)
