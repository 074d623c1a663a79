"""What every admin view shares: staff-only access, the app state, and error helpers;
labels for people on every column and timestamps to the minute in UTC (``display``).

A row id in a URL is checked before any query: anything but a whole number the id column
can hold (``abc``, ``-1``, ``99999999999999999999``) is a 404 page, like an id with no
row. CSV exports neutralise cells a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError
from sqladmin import ModelView
from sqladmin.helpers import secure_filename
from sqlalchemy import BigInteger
from sqlalchemy import inspect as sa_inspect
from starlette import status
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, StreamingResponse

from modelyard.admin.auth import admin_user
from modelyard.admin.display import TYPE_FORMATTERS, label_for
from modelyard.api.errors import MAX_STORED_INTEGER
from modelyard.api.state import AppState
from modelyard.db.models import User
from modelyard.errors import BadRequestError
from modelyard.security.csv_cells import safe_cell

__all__ = ["MAX_BIG_ID", "StaffView", "clean_text", "selected_ids", "validated"]

_Model = TypeVar("_Model", bound=BaseModel)

#: The largest id of a ``bigint`` column (``integer`` ones: ``MAX_STORED_INTEGER``).
MAX_BIG_ID = 2**63 - 1


class StaffView(ModelView):
    """A model view open to authenticated staff only; bound to one app at mount time."""

    app_state: ClassVar[AppState]
    column_type_formatters = TYPE_FORMATTERS
    column_type_formatters_detail = TYPE_FORMATTERS

    def __init__(self) -> None:
        super().__init__()
        # Every column shown or searched gets a label for people (the view's own first).
        for name in {*self._list_prop_names, *self._details_prop_names, *self._search_fields}:
            self._column_labels.setdefault(name, label_for(name))
        self._column_labels_value_by_key = {v: k for k, v in self._column_labels.items()}

    def is_accessible(self, request: Request) -> bool:
        return admin_user(request) is not None

    def back_to_list(self, request: Request) -> RedirectResponse:
        """After an action: the view's list (where its flash messages show)."""
        url = request.url_for("admin:list", identity=self.identity)
        return RedirectResponse(str(url), status_code=status.HTTP_303_SEE_OTHER)

    # -- rows by id: a 404 for an id that is malformed, out of range or has no row ------

    def _row_id(self, value: Any) -> int | None:
        """``value`` as an id of this view's table, or ``None`` when it cannot be one."""
        text = str(value)
        if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
            return None
        big = isinstance(sa_inspect(self.model).primary_key[0].type, BigInteger)
        largest = MAX_BIG_ID if big else MAX_STORED_INTEGER
        number = int(text)
        return number if 0 < number <= largest else None

    def _missing(self, value: Any) -> HTTPException:
        shown = str(value)[:40]
        return HTTPException(
            status.HTTP_404_NOT_FOUND, f"No {self.name.lower()} with id {shown!r}."
        )

    async def _existing(self, request: Request, load: Any) -> Any:
        pk = request.path_params.get("pk")
        if self._row_id(pk) is None:
            raise self._missing(pk)
        found = await load(request)
        if found is None:
            raise self._missing(pk)
        return found

    async def get_object_for_details(self, request: Request) -> Any:
        return await self._existing(request, super().get_object_for_details)

    async def get_object_for_edit(self, request: Request) -> Any:
        return await self._existing(request, super().get_object_for_edit)

    async def get_object_for_delete(self, value: Any) -> Any:
        if self._row_id(value) is None:
            return None
        return await super().get_object_for_delete(value)

    # -- exports -----------------------------------------------------------------------

    async def export_data(
        self, data: list[Any], export_type: str = "csv", request: Request | None = None
    ) -> StreamingResponse:
        """SQLAdmin's export, with CSV cells that never start a formula."""
        if export_type != "csv":
            return await super().export_data(data, export_type, request)
        columns = self.get_export_columns()

        async def lines() -> AsyncIterator[str]:
            yield _csv_line(columns)
            for row in data:
                values = [await self.get_prop_value(row, name) for name in columns]
                yield _csv_line(["" if v is None else safe_cell(str(v)) for v in values])

        filename = secure_filename(self.get_export_name(export_type="csv"))
        return StreamingResponse(
            lines(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment;filename={filename}"},
        )

    def actor(self, request: Request) -> User:
        """The staff user making this request (the audit log's actor)."""
        user = admin_user(request)
        if user is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "The admin needs a staff account.")
        return user


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


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
