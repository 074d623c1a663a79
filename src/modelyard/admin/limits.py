"""Admin view of the budgets and rate limits (``usage_limits``): one row per user or per
API token, saved through the same record functions as the staff API (validated, audited)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from wtforms import DecimalField, Form, IntegerField, SelectField
from wtforms.validators import Optional

from modelyard.admin.base import StaffView, validated
from modelyard.admin.forms import Bounded
from modelyard.db.models import UsageLimit
from modelyard.errors import BadRequestError, ConflictError, NotFoundError
from modelyard.limits.periods import PERIODS
from modelyard.limits.records import (
    MAX_RATE,
    LimitsSpec,
    delete_limits,
    find_limits,
    put_limits,
    subject_name,
)
from modelyard.limits.rules import SubjectKind

__all__ = ["UsageLimitAdmin", "UsageLimitForm"]

_TEXT = {"class": "form-control"}
_SUBJECT = "Exactly one of user id and API token id."
_FIELDS = ("budget_usd", "budget_period", "requests_per_minute", "tokens_per_minute")


class UsageLimitForm(Form):
    user_id = IntegerField(
        "User id", [Optional(), Bounded(min=1)], description=_SUBJECT, render_kw=_TEXT
    )
    api_token_id = IntegerField(
        "API token id", [Optional(), Bounded(min=1)], description=_SUBJECT, render_kw=_TEXT
    )
    budget_usd = DecimalField(
        "Budget (USD per period)",
        [Optional(), Bounded(min=0, max=Decimal(10**12))],
        places=6,
        description="Blank: no budget.",
        render_kw=_TEXT,
    )
    budget_period = SelectField(
        "Budget period (calendar, UTC)",
        choices=[(period, period) for period in PERIODS],
        default="month",
        render_kw={"class": "form-select"},
    )
    requests_per_minute = IntegerField(
        "Requests per minute", [Optional(), Bounded(max=MAX_RATE)], render_kw=_TEXT
    )
    tokens_per_minute = IntegerField(
        "Tokens per minute", [Optional(), Bounded(max=MAX_RATE)], render_kw=_TEXT
    )


def _subject(data: dict[str, Any]) -> tuple[SubjectKind, int]:
    user_id, token_id = data.get("user_id"), data.get("api_token_id")
    if user_id is not None and token_id is None:
        return "user", int(user_id)
    if token_id is not None and user_id is None:
        return "token", int(token_id)
    raise BadRequestError("Invalid subject: give exactly one of user id and API token id.")


def _spec(data: dict[str, Any]) -> LimitsSpec:
    return validated(LimitsSpec, {name: data.get(name) for name in _FIELDS})


def _row_subject(row: UsageLimit) -> tuple[SubjectKind, int]:
    if row.user_id is not None:
        return "user", row.user_id
    assert row.api_token_id is not None
    return "token", row.api_token_id


class UsageLimitAdmin(StaffView, model=UsageLimit):
    """Budgets and rate limits per user or per API token."""

    name = "Limit"
    name_plural = "Limits"
    icon = "fa-solid fa-gauge-high"
    can_export = False
    column_list = [
        UsageLimit.id,
        UsageLimit.user_id,
        UsageLimit.api_token_id,
        UsageLimit.budget_usd,
        UsageLimit.budget_period,
        UsageLimit.requests_per_minute,
        UsageLimit.tokens_per_minute,
        UsageLimit.updated_at,
    ]
    column_details_list = [*column_list, UsageLimit.created_at]
    column_labels = {
        UsageLimit.user_id: "User ID",
        UsageLimit.api_token_id: "API token ID",
        UsageLimit.budget_usd: "Budget (USD)",
        UsageLimit.budget_period: "Period",
        UsageLimit.requests_per_minute: "Requests/min",
        UsageLimit.tokens_per_minute: "Tokens/min",
    }
    column_sortable_list = [UsageLimit.id, UsageLimit.user_id, UsageLimit.api_token_id]
    column_default_sort = [("id", False)]
    form = UsageLimitForm
    form_columns = ["user_id", "api_token_id", *_FIELDS]

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        kind, subject_id = _subject(data)
        spec = _spec(data)
        async with self.app_state.database.sessions() as session:
            if await find_limits(session, kind, subject_id) is not None:
                raise ConflictError(
                    f"{subject_name(kind, subject_id).capitalize()} has limits already; "
                    "edit them instead."
                )
            row, _created = await put_limits(
                session, actor=self.actor(request), kind=kind, subject_id=subject_id, spec=spec
            )
        self.app_state.limits.invalidate(kind, subject_id)
        return row

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        spec = _spec(data)
        async with self.app_state.database.sessions() as session:
            row = await self._get(session, pk)
            kind, subject_id = _row_subject(row)
            if _subject(data) != (kind, subject_id):
                raise BadRequestError(
                    "The subject of a limit cannot change; delete it and create another."
                )
            row, _created = await put_limits(
                session, actor=self.actor(request), kind=kind, subject_id=subject_id, spec=spec
            )
        self.app_state.limits.invalidate(kind, subject_id)
        return row

    async def delete_model(self, request: Request, pk: Any) -> None:
        async with self.app_state.database.sessions() as session:
            kind, subject_id = _row_subject(await self._get(session, pk))
            await delete_limits(
                session, actor=self.actor(request), kind=kind, subject_id=subject_id
            )
        self.app_state.limits.invalidate(kind, subject_id)

    @staticmethod
    async def _get(session: Any, pk: Any) -> UsageLimit:
        row = await session.get(UsageLimit, int(pk))
        if row is None:
            raise NotFoundError(f"No limit with id {pk}.")
        return row  # type: ignore[no-any-return]
