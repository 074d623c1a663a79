"""Admin views of accounts, the model catalog and the audit log; changes are audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from modelyard.admin.base import StaffView, clean_text
from modelyard.admin.forms import LlmModelForm, UserForm
from modelyard.audit import record_audit
from modelyard.db.models import AuditLogEntry, LlmModel, User
from modelyard.errors import BadRequestError, ConflictError, NotFoundError

__all__ = ["AuditLogAdmin", "LlmModelAdmin", "UserAdmin"]

USER_FIELDS = ("is_staff", "is_active", "has_subscription", "trial_ends_at")
MODEL_FIELDS = (
    "provider_kind",
    "model_id",
    "display_name",
    "task",
    "input_price_per_million",
    "output_price_per_million",
    "context_length",
    "description",
    "is_active",
)


def _aware(value: datetime | None) -> datetime | None:
    """Form datetimes are naive and meant as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class UserAdmin(StaffView, model=User):
    """Accounts: search by e-mail, change access flags; no creation, no password."""

    name = "User"
    name_plural = "Users"
    icon = "fa-solid fa-user"
    can_create = False
    can_delete = False
    can_export = False
    column_list = [
        User.id,
        User.email,
        User.full_name,
        User.is_staff,
        User.is_active,
        User.has_subscription,
        User.trial_ends_at,
        User.created_at,
    ]
    column_details_list = [*column_list, User.updated_at]
    column_searchable_list = [User.email]
    column_sortable_list = [User.id, User.email, User.created_at, User.trial_ends_at]
    column_default_sort = [("id", False)]
    form = UserForm
    form_columns = list(USER_FIELDS)

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        actor = self.actor(request)
        changes = {name: data.get(name) for name in USER_FIELDS}
        changes = {**changes, "trial_ends_at": _aware(changes["trial_ends_at"])}
        for flag in ("is_staff", "is_active", "has_subscription"):
            changes[flag] = bool(changes[flag])
        async with self.app_state.database.sessions() as session:
            user = await session.get(User, int(pk))
            if user is None:
                raise NotFoundError(f"No user with id {pk}.")
            if user.id == actor.id and not (changes["is_staff"] and changes["is_active"]):
                raise BadRequestError(
                    "You cannot remove your own staff access or deactivate your own account."
                )
            changed = [name for name, value in changes.items() if getattr(user, name) != value]
            if changed:
                for name in changed:
                    setattr(user, name, changes[name])
                record_audit(
                    session,
                    actor=actor,
                    action="update",
                    entity_type="user",
                    entity_id=user.id,
                    entity_name=user.email,
                    changed_fields=changed,
                )
                await session.commit()
            return user


def _model_values(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "provider_kind": data["provider_kind"],
        "model_id": clean_text(data.get("model_id")),
        "display_name": clean_text(data.get("display_name")),
        "task": clean_text(data.get("task")) or "chat",
        "input_price_per_million": data["input_price_per_million"],
        "output_price_per_million": data["output_price_per_million"],
        "context_length": data.get("context_length"),
        "description": clean_text(data.get("description")),
        "is_active": bool(data.get("is_active")),
    }


def _duplicate(values: Mapping[str, Any]) -> ConflictError:
    return ConflictError(
        f"{values['provider_kind']}/{values['model_id']} is in the catalog already."
    )


async def _save(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """Commit, turning the unique (kind, model id) violation into a clear conflict."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise _duplicate(values) from None


class LlmModelAdmin(StaffView, model=LlmModel):
    """The model catalog with its prices."""

    name = "Model and price"
    name_plural = "Models and prices"
    icon = "fa-solid fa-tags"
    column_list = [
        LlmModel.id,
        LlmModel.provider_kind,
        LlmModel.model_id,
        LlmModel.display_name,
        LlmModel.task,
        LlmModel.input_price_per_million,
        LlmModel.output_price_per_million,
        LlmModel.context_length,
        LlmModel.is_active,
    ]
    column_searchable_list = [LlmModel.provider_kind, LlmModel.model_id, LlmModel.display_name]
    column_sortable_list = [LlmModel.provider_kind, LlmModel.model_id, LlmModel.display_name]
    column_default_sort = [("provider_kind", False), ("model_id", False)]
    form = LlmModelForm
    form_columns = list(MODEL_FIELDS)

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        values = _model_values(data)
        async with self.app_state.database.sessions() as session:
            model = LlmModel(**values)
            session.add(model)
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                raise _duplicate(values) from None
            self._audit(session, request, "create", model, [k for k, v in values.items() if v])
            await _save(session, values)
            return model

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        values = _model_values(data)
        async with self.app_state.database.sessions() as session:
            model = await session.get(LlmModel, int(pk))
            if model is None:
                raise NotFoundError(f"No catalog model with id {pk}.")
            changed = [name for name, value in values.items() if getattr(model, name) != value]
            if changed:
                for name in changed:
                    setattr(model, name, values[name])
                self._audit(session, request, "update", model, changed)
                await _save(session, values)
            return model

    async def delete_model(self, request: Request, pk: Any) -> None:
        async with self.app_state.database.sessions() as session:
            model = await session.get(LlmModel, int(pk))
            if model is None:
                raise NotFoundError(f"No catalog model with id {pk}.")
            self._audit(session, request, "delete", model, [])
            await session.delete(model)
            await session.commit()

    def _audit(
        self,
        session: AsyncSession,
        request: Request,
        action: str,
        model: LlmModel,
        fields: list[str],
    ) -> None:
        record_audit(
            session,
            actor=self.actor(request),
            action=action,
            entity_type="llm_model",
            entity_id=model.id,
            entity_name=str(model),
            changed_fields=fields,
        )


def _field_names(model: Any, _attribute: Any) -> str:
    return ", ".join(str(name) for name in model.changed_fields or [])


class AuditLogAdmin(StaffView, model=AuditLogEntry):
    """Who changed what, newest first; read-only."""

    name = "Audit log entry"
    name_plural = "Audit log"
    icon = "fa-solid fa-clipboard-list"
    can_create = False
    can_edit = False
    can_delete = False
    page_size = 50
    column_list = [
        AuditLogEntry.id,
        AuditLogEntry.created_at,
        AuditLogEntry.actor_email,
        AuditLogEntry.action,
        AuditLogEntry.entity_type,
        AuditLogEntry.entity_id,
        AuditLogEntry.entity_name,
        AuditLogEntry.changed_fields,
        AuditLogEntry.detail,
    ]
    column_searchable_list = [
        AuditLogEntry.actor_email,
        AuditLogEntry.action,
        AuditLogEntry.entity_type,
        AuditLogEntry.entity_name,
    ]
    column_sortable_list = [AuditLogEntry.id, AuditLogEntry.created_at]
    column_default_sort = [("id", True)]
    column_formatters = {AuditLogEntry.changed_fields: _field_names}
    column_formatters_detail = {AuditLogEntry.changed_fields: _field_names}
