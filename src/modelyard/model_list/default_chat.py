"""The default chat model an admin chose: what a new chat opens with.

Kept as the app setting :data:`SETTING` (the model's name, as ``GET /v1/models`` lists
it), each change in the audit log. A user for whom that name is not a usable chat model
(a provider they have no key for, a route that reaches nothing of theirs) gets their first
chat model instead, as without a default.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.audit import record_audit
from modelyard.db.models import AppSetting, User
from modelyard.errors import BadRequestError, NotFoundError
from modelyard.model_list.entries import ListedModel, ModelList

__all__ = [
    "SETTING",
    "chat_model_for",
    "checked_default",
    "default_chat_model",
    "set_default_chat_model",
]

#: The app setting's key.
SETTING = "default_chat_model"


async def default_chat_model(session: AsyncSession) -> str | None:
    """The admin's default chat model, or ``None``."""
    row = await session.get(AppSetting, SETTING)
    return str(row.value) if row is not None and row.value else None


async def set_default_chat_model(session: AsyncSession, *, actor: User, model: str | None) -> None:
    """Set (``None``: clear) the default chat model, audited, in one transaction (the
    caller has checked that ``model`` is a chat model)."""
    row = await session.get(AppSetting, SETTING)
    before = str(row.value) if row is not None and row.value else None
    if row is None:
        row = AppSetting(key=SETTING, value=model, updated_by_id=actor.id)
        session.add(row)
    else:
        row.value, row.updated_by_id = model, actor.id
    record_audit(
        session,
        actor=actor,
        action="update" if model else "clear",
        entity_type="app_setting",
        entity_id=None,
        entity_name=SETTING,
        changed_fields=["value"],
        detail=f"default chat model: {before or 'none'} -> {model or 'none'}",
    )
    await session.commit()


def chat_model_for(listed: ModelList, default: str | None) -> ListedModel | None:
    """The model a new chat opens with for the owner of ``listed``: the default when it is
    one of their chat models, else their first chat model (``None``: they have none)."""
    if default:
        found = listed.find(default)
        if found is not None and found.chat:
            return found
    return next(iter(listed.chat), None)


def checked_default(listed: ModelList, name: str | None) -> str | None:
    """``name`` as the default chat model may be set by the owner of ``listed`` (its listed
    name; ``None`` or blank: no default); a 404 for a name they cannot use, a 400 for a
    model that does not chat."""
    name = (name or "").strip()
    if not name:
        return None
    found = listed.find(name)
    if found is None:
        raise NotFoundError(
            f"The model `{name[:300]}` does not exist or you do not have access to it. "
            "GET /v1/models lists the models you can use.",
            param="model",
            code="model_not_found",
        )
    if not found.chat:
        raise BadRequestError(
            f"`{name}` is no chat model (its kind: {found.task}); choose a chat model from "
            "GET /v1/models (kind chat).",
            param="model",
            code="not_a_chat_model",
        )
    return found.name
