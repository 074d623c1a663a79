"""Admin views of provider fine-tuning: training files, commands and job events.

A training file is uploaded from its create form (checked with the provider's rules,
then sent to the provider). A command is created ``pending`` from its form (refused at
once when it could not run) and run with the **Run** action; **Refresh** and **Cancel**
act on the jobs of the ticked commands. Outcomes come back as flash messages; a
provider's failure is also kept on the command (status, code, message), shown in the
list. Everything goes through :mod:`modelyard.finetune`, like the API and the CLI.
"""

from __future__ import annotations

import shutil
from typing import Any

from sqladmin import Flash, action
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from wtforms import DecimalField, FileField, Form, IntegerField, SelectField, StringField
from wtforms.validators import Optional

from modelyard.admin.base import StaffView, clean_text, selected_ids, validated
from modelyard.admin.forms import Bounded
from modelyard.audit import record_audit
from modelyard.db.models import FineTuneCommand, FineTuneEvent, FineTuneFile
from modelyard.errors import BadRequestError, ConflictError, ModelyardError
from modelyard.finetune import commands, files
from modelyard.finetune.preparation import prepare
from modelyard.finetune.remote import TERMINAL_STATUSES
from modelyard.finetune.runtime import Runtime
from modelyard.finetune.schemas import COMMAND_TYPES, CommandCreate, CommandType

__all__ = ["FineTuneCommandAdmin", "FineTuneEventAdmin", "FineTuneFileAdmin"]

_TEXT = {"class": "form-control"}
_AUTO = "Blank: the provider's default (auto)."


class TrainingFileForm(Form):
    file = FileField(
        "Training file (.jsonl, chat format)",
        description="Checked with the provider's rules, then uploaded to the default provider.",
        render_kw={"class": "form-control", "accept": ".jsonl"},
    )


class CommandForm(Form):
    command_type = SelectField(
        "Type",
        choices=[(name, name) for name in COMMAND_TYPES],
        render_kw={"class": "form-select"},
    )
    training_file_id = IntegerField(
        "Training file id (create)", [Optional(), Bounded(min=1)], render_kw=_TEXT
    )
    validation_file_id = IntegerField(
        "Validation file id", [Optional(), Bounded(min=1)], render_kw=_TEXT
    )
    model = StringField(
        "Base model",
        [Optional()],
        description="Blank: the provider's base model.",
        render_kw=_TEXT,
    )
    n_epochs = IntegerField(
        "Epochs", [Optional(), Bounded(1, 50)], description=_AUTO, render_kw=_TEXT
    )
    batch_size = IntegerField(
        "Batch size", [Optional(), Bounded(1, 256)], description=_AUTO, render_kw=_TEXT
    )
    learning_rate_multiplier = DecimalField(
        "Learning-rate multiplier",
        [Optional(), Bounded(min=0, max=1000)],
        description=_AUTO,
        render_kw=_TEXT,
    )
    suffix = StringField("Model name suffix", [Optional()], render_kw=_TEXT)
    seed = IntegerField("Seed", [Optional(), Bounded(min=0)], render_kw=_TEXT)
    job_command_id = IntegerField(
        "Job (create command id; refresh, cancel, list_events)",
        [Optional(), Bounded(min=1)],
        render_kw=_TEXT,
    )


def _runtime(view: StaffView) -> Runtime:
    state = view.app_state
    return Runtime.from_settings(state.settings, state.gateway.http)


def _error(model: Any, _attribute: Any) -> str:
    if model.error_message is None:
        return ""
    where = f"HTTP {model.error_status} " if model.error_status else ""
    code = f"{model.error_code}: " if model.error_code else ""
    return f"{where}{code}{model.error_message}"


class FineTuneFileAdmin(StaffView, model=FineTuneFile):
    """Training files at the providers: upload, list, delete (at the provider too)."""

    name = "Training file"
    name_plural = "Training files"
    icon = "fa-solid fa-file-lines"
    can_edit = False
    can_export = False
    column_list = [
        FineTuneFile.id,
        FineTuneFile.filename,
        FineTuneFile.provider_name,
        FineTuneFile.provider_kind,
        FineTuneFile.remote_id,
        FineTuneFile.remote_status,
        FineTuneFile.num_examples,
        FineTuneFile.size_bytes,
        FineTuneFile.created_at,
    ]
    column_details_list = [
        *column_list,
        FineTuneFile.purpose,
        FineTuneFile.sha256,
        FineTuneFile.status_detail,
        FineTuneFile.provider_id,
        FineTuneFile.created_by_id,
    ]
    column_searchable_list = [FineTuneFile.filename, FineTuneFile.remote_id]
    column_sortable_list = [FineTuneFile.id, FineTuneFile.created_at]
    column_default_sort = [("id", True)]
    form = TrainingFileForm
    form_columns = ["file"]

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        upload = data.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise BadRequestError("Choose a .jsonl training file to upload.")
        state = self.app_state
        staged = files.stage_path(state.settings.data_dir.resolve(), upload.filename)
        try:
            with staged.open("wb") as out:
                shutil.copyfileobj(upload.file, out)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        async with state.database.sessions() as session:
            return await files.upload_training_file(
                session,
                staged=staged,
                filename=upload.filename,
                actor=self.actor(request),
                runtime=_runtime(self),
            )

    async def delete_model(self, request: Request, pk: Any) -> None:
        async with self.app_state.database.sessions() as session:
            record = await files.get_training_file(session, int(pk))
            await files.delete_training_file(
                session, record=record, actor=self.actor(request), runtime=_runtime(self)
            )


class FineTuneCommandAdmin(StaffView, model=FineTuneCommand):
    """Fine-tuning commands and their jobs: create, then Run; Refresh and Cancel jobs."""

    name = "Fine-tuning command"
    name_plural = "Fine-tuning commands"
    icon = "fa-solid fa-wand-magic-sparkles"
    can_edit = False
    can_export = False
    column_list = [
        FineTuneCommand.id,
        FineTuneCommand.command_type,
        FineTuneCommand.state,
        FineTuneCommand.provider_name,
        FineTuneCommand.job_command_id,
        FineTuneCommand.remote_job_id,
        FineTuneCommand.job_status,
        FineTuneCommand.fine_tuned_model,
        FineTuneCommand.error_message,
        FineTuneCommand.created_at,
    ]
    column_details_list = [
        *column_list,
        FineTuneCommand.model,
        FineTuneCommand.training_file_id,
        FineTuneCommand.validation_file_id,
        FineTuneCommand.data,
        FineTuneCommand.request,
        FineTuneCommand.result,
        FineTuneCommand.sync_error,
        FineTuneCommand.ran_at,
        FineTuneCommand.synced_at,
        FineTuneCommand.finished_at,
        FineTuneCommand.created_by_id,
    ]
    column_labels = {
        FineTuneCommand.command_type: "Type",
        FineTuneCommand.provider_name: "Provider",
        FineTuneCommand.job_command_id: "Job command",
        FineTuneCommand.remote_job_id: "Provider's job ID",
        FineTuneCommand.job_status: "Job status",
        FineTuneCommand.error_message: "Error",
    }
    column_formatters = {FineTuneCommand.error_message: _error}
    column_formatters_detail = {FineTuneCommand.error_message: _error}
    column_searchable_list = [
        FineTuneCommand.remote_job_id,
        FineTuneCommand.fine_tuned_model,
        FineTuneCommand.job_status,
    ]
    column_sortable_list = [FineTuneCommand.id, FineTuneCommand.created_at]
    column_default_sort = [("id", True)]
    form = CommandForm
    form_columns = list(CommandForm().data)

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        kind = data.get("command_type") or "create"
        params = {
            name: data.get(name)
            for name in ("n_epochs", "batch_size", "suffix", "seed")
            if data.get(name) not in (None, "")
        }
        if data.get("learning_rate_multiplier") is not None:
            params["learning_rate_multiplier"] = float(data["learning_rate_multiplier"])
        values: dict[str, Any] = {
            "type": kind,
            "training_file_id": data.get("training_file_id"),
            "validation_file_id": data.get("validation_file_id"),
            "model": clean_text(data.get("model")),
            "job_command_id": data.get("job_command_id"),
        }
        if params:
            values["data"] = {k: clean_text(v) if k == "suffix" else v for k, v in params.items()}
        spec = validated(CommandCreate, values)
        async with self.app_state.database.sessions() as session:
            await prepare(session, spec, _runtime(self))
            return await commands.create_command(session, actor=self.actor(request), spec=spec)

    async def delete_model(self, request: Request, pk: Any) -> None:
        async with self.app_state.database.sessions() as session:
            command = await commands.get_command(session, int(pk))
            if (
                command.command_type == "create"
                and command.remote_job_id
                and command.job_status not in TERMINAL_STATUSES
            ):
                raise ConflictError(
                    f"The job of command {command.id} is {command.job_status}: cancel it first."
                )
            record_audit(
                session,
                actor=self.actor(request),
                action="delete",
                entity_type="finetune_command",
                entity_id=command.id,
                entity_name=str(command),
            )
            await session.delete(command)
            await session.commit()

    # -- actions --------------------------------------------------------------------------

    async def _each(
        self, request: Request, command_type: CommandType | None
    ) -> list[tuple[int, str, bool]]:
        """Run (``None``) or act on the job of each ticked command: (id, outcome, ok)."""
        state, runtime, actor = self.app_state, _runtime(self), self.actor(request)
        outcomes = []
        for command_id in selected_ids(request, "command"):
            try:
                async with state.database.sessions() as session:
                    command = await commands.get_command(session, command_id)
                    if command_type is None:
                        published = await commands.run_command(
                            session, command, runtime=runtime, actor=actor
                        )
                        job = command
                    else:
                        job, published = await commands.act_on_job(
                            session,
                            command_type=command_type,
                            command=command,
                            runtime=runtime,
                            actor=actor,
                        )
            except ModelyardError as exc:
                outcomes.append((command_id, exc.message, False))
                continue
            if published:
                state.gateway.invalidate()
            outcomes.append((command_id, _outcome(job), True))
        return outcomes

    async def _act(self, request: Request, command_type: CommandType | None) -> Response:
        try:
            outcomes = await self._each(request, command_type)
        except ModelyardError as exc:
            Flash.error(request, exc.message)
            return self.back_to_list(request)
        for command_id, message, ok in outcomes:
            text = f"Command {command_id}: {message}"
            (Flash.success if ok else Flash.error)(request, text)
        return self.back_to_list(request)

    @action("run", "Run")
    async def run(self, request: Request) -> Response:
        return await self._act(request, None)

    @action("refresh", "Refresh job status")
    async def refresh(self, request: Request) -> Response:
        return await self._act(request, "refresh")

    @action("cancel", "Cancel job", confirmation_message="Cancel the selected jobs?")
    async def cancel(self, request: Request) -> Response:
        return await self._act(request, "cancel")


def _outcome(command: FineTuneCommand) -> str:
    if command.command_type != "create":
        return f"{command.command_type} done."
    said = f"job {command.remote_job_id} is {command.job_status}"
    if command.fine_tuned_model:
        said += f"; model {command.fine_tuned_model}"
    if command.error_message:
        said += f"; error {command.error_code}: {command.error_message}"
    return f"{said} (on {command.provider_name})."


class FineTuneEventAdmin(StaffView, model=FineTuneEvent):
    """The events of provider jobs, newest first; read-only."""

    name = "Fine-tuning event"
    name_plural = "Fine-tuning events"
    icon = "fa-solid fa-list"
    can_create = False
    can_edit = False
    can_delete = False
    can_export = False
    page_size = 50
    column_list = [
        FineTuneEvent.id,
        FineTuneEvent.command_id,
        FineTuneEvent.created_at,
        FineTuneEvent.level,
        FineTuneEvent.message,
    ]
    column_details_list = [
        *column_list,
        FineTuneEvent.remote_id,
        FineTuneEvent.recorded_at,
        FineTuneEvent.data,
    ]
    column_labels = {FineTuneEvent.command_id: "Command", FineTuneEvent.remote_id: "Event ID"}
    column_searchable_list = [FineTuneEvent.message, FineTuneEvent.level]
    column_sortable_list = [FineTuneEvent.id, FineTuneEvent.command_id]
    column_default_sort = [("id", True)]
