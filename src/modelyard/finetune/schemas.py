"""Pydantic schemas of provider fine-tuning: command data, commands, and public views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from modelyard.db.models import FineTuneCommand, FineTuneEvent, FineTuneFile

__all__ = [
    "COMMAND_TYPES",
    "CommandCreate",
    "CommandError",
    "CommandPublic",
    "CommandType",
    "EventPublic",
    "FilePublic",
    "FineTuneParams",
]

CommandType = Literal["create", "refresh", "cancel", "list_events"]
COMMAND_TYPES: tuple[CommandType, ...] = ("create", "refresh", "cancel", "list_events")
Auto = Literal["auto"]
#: The largest id the databases store (a PostgreSQL ``integer``).
MAX_ID = 2**31 - 1
RecordId = Annotated[int, Field(ge=1, le=MAX_ID)]
Suffix = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]


class FineTuneParams(BaseModel):
    """A ``create`` command's data: hyperparameters (a number or ``"auto"``; left out:
    the provider's default), the model name's suffix and the seed."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: Annotated[int, Field(ge=1, le=50)] | Auto | None = None
    batch_size: Annotated[int, Field(ge=1, le=256)] | Auto | None = None
    learning_rate_multiplier: Annotated[float, Field(gt=0, le=10)] | Auto | None = None
    #: Part of the fine-tuned model's name (letters, digits, ``.``, ``_``, ``-``).
    suffix: Suffix | None = None
    seed: Annotated[int, Field(ge=0, le=2_147_483_647)] | None = None

    def hyperparameters(self) -> dict[str, Any]:
        values = self.model_dump(
            include={"n_epochs", "batch_size", "learning_rate_multiplier"}, exclude_none=True
        )
        return values


class CommandCreate(BaseModel):
    """A command: ``create`` takes the files, the base model and ``data``; the others
    name the ``create`` command whose job they act on (``job_command_id``)."""

    model_config = ConfigDict(extra="forbid")

    type: CommandType = "create"
    training_file_id: RecordId | None = None
    validation_file_id: RecordId | None = None
    #: The base model; default: the provider's base model.
    model: str | None = Field(default=None, min_length=1, max_length=200)
    data: FineTuneParams = Field(default_factory=FineTuneParams)
    job_command_id: RecordId | None = None

    @model_validator(mode="after")
    def _fits_type(self) -> CommandCreate:
        if self.type == "create":
            if self.training_file_id is None:
                raise ValueError("a create command needs training_file_id (a training file id)")
            if self.job_command_id is not None:
                raise ValueError("job_command_id is for refresh, cancel and list_events")
            return self
        if self.job_command_id is None:
            raise ValueError(f"a {self.type} command needs job_command_id (a create command)")
        extra = [
            name
            for name in ("training_file_id", "validation_file_id", "model")
            if getattr(self, name) is not None
        ]
        if extra or self.data.model_dump(exclude_none=True):
            raise ValueError(
                f"a {self.type} command takes job_command_id only, not "
                f"{', '.join(extra or ['data'])}"
            )
        return self


class FilePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    purpose: str
    provider_id: int | None
    provider_kind: str
    provider_name: str
    remote_id: str
    remote_status: str | None
    status_detail: str | None
    sha256: str
    size_bytes: int
    num_examples: int
    created_by_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, record: FineTuneFile) -> FilePublic:
        return cls.model_validate(record)


class CommandError(BaseModel):
    """A provider's error: its HTTP status (none for a failed job), code, message, param."""

    status: int | None
    code: str | None
    message: str
    param: str | None


class CommandPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: CommandType
    state: str
    provider_id: int | None
    provider_kind: str | None
    provider_name: str | None
    training_file_id: int | None
    validation_file_id: int | None
    job_command_id: int | None
    model: str | None
    data: dict[str, Any]
    request: dict[str, Any] | None
    remote_job_id: str | None
    job_status: str | None
    fine_tuned_model: str | None
    result: dict[str, Any] | None
    error: CommandError | None
    sync_error: str | None
    created_by_id: int | None
    created_at: datetime
    ran_at: datetime | None
    synced_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, command: FineTuneCommand) -> CommandPublic:
        error = None
        if command.error_message is not None:
            error = CommandError(
                status=command.error_status,
                code=command.error_code,
                message=command.error_message,
                param=command.error_param,
            )
        values = {
            name: getattr(command, name)
            for name in cls.model_fields
            if name not in ("type", "error") and hasattr(command, name)
        }
        return cls.model_validate({**values, "type": command.command_type, "error": error})


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    remote_id: str
    created_at: datetime | None
    recorded_at: datetime
    level: str
    message: str
    data: dict[str, Any] | None

    @classmethod
    def of(cls, event: FineTuneEvent) -> EventPublic:
        return cls.model_validate(event)
