"""What every admin view shares: staff-only access, the app state, and error helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError
from sqladmin import ModelView
from starlette import status
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from modelyard.admin.auth import admin_user
from modelyard.api.state import AppState
from modelyard.db.models import User
from modelyard.errors import BadRequestError

__all__ = ["StaffView", "clean_text", "selected_ids", "validated"]

_Model = TypeVar("_Model", bound=BaseModel)


class StaffView(ModelView):
    """A model view open to authenticated staff only; bound to one app at mount time."""

    app_state: ClassVar[AppState]

    def is_accessible(self, request: Request) -> bool:
        return admin_user(request) is not None

    def back_to_list(self, request: Request) -> RedirectResponse:
        """After an action: the view's list (where its flash messages show)."""
        url = request.url_for("admin:list", identity=self.identity)
        return RedirectResponse(str(url), status_code=status.HTTP_303_SEE_OTHER)

    def actor(self, request: Request) -> User:
        """The staff user making this request (the audit log's actor)."""
        user = admin_user(request)
        if user is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "The admin needs a staff account.")
        return user


def selected_ids(request: Request, what: str) -> list[int]:
    """The rows ticked for an action (``pks``), in order; 400 when none or malformed."""
    raw = [part for part in request.query_params.get("pks", "").split(",") if part.strip()]
    try:
        ids = list(dict.fromkeys(int(part) for part in raw))
    except ValueError:
        raise BadRequestError(f"Invalid {what} selection.") from None
    if not ids:
        raise BadRequestError(f"Select at least one {what} first.")
    return ids


def clean_text(value: Any) -> str | None:
    """A form's text value stripped, with blank as ``None``."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def validated(schema: type[_Model], values: Mapping[str, Any]) -> _Model:
    """Validate ``values`` with an API schema; errors name fields, never echo values."""
    try:
        return schema.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise BadRequestError(f"Invalid value: {problems}") from None
