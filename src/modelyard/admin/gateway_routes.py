"""Admin view of named gateway routes: one target per line, saved through the same
record functions as the API (validated, audited, file-managed routes read-only)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from wtforms import BooleanField, Form, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from modelyard.admin.base import StaffView, clean_text, validated
from modelyard.admin.forms import Bounded
from modelyard.db.models import GatewayRoute
from modelyard.errors import BadRequestError
from modelyard.gateway import route_records
from modelyard.gateway.route_specs import RouteSpec

__all__ = ["GatewayRouteAdmin", "format_targets", "parse_targets"]

_TEXT = {"class": "form-control"}
_HELP = (
    "One target per line, in priority order: provider model [endpoint], e.g. "
    "'openai gpt-3.5-turbo' or 'huggingface HuggingFaceH4/zephyr-7b-beta direct'."
)


def format_targets(targets: list[dict[str, Any]]) -> str:
    return "\n".join(
        " ".join(part for part in (t["provider"], t["model"], t.get("endpoint")) if part)
        for t in targets
    )


def parse_targets(text: str) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (2, 3):
            raise BadRequestError(f"Targets line {number}: write 'provider model [endpoint]'.")
        target = {"provider": parts[0], "model": parts[1]}
        if len(parts) == 3:
            target["endpoint"] = parts[2]
        targets.append(target)
    return targets


class TargetsField(TextAreaField):
    """Shows the stored list as lines; the form's text is parsed when saved."""

    def process_data(self, value: Any) -> None:
        self.data = format_targets(value) if isinstance(value, list) else value


class RouteForm(Form):
    name = StringField("Name", [DataRequired(), Length(max=200)], render_kw=_TEXT)
    description = TextAreaField("Description", [Optional()], render_kw=_TEXT)
    targets = TargetsField("Targets", [DataRequired()], description=_HELP, render_kw=_TEXT)
    cache_ttl_seconds = IntegerField(
        "Cache answers for (seconds)", [Optional(), Bounded(min=1)], render_kw=_TEXT
    )
    cache_shared = BooleanField(
        "Share cached answers across users (admin and system keys only)",
        default=False,
        render_kw={"class": "form-check-input"},
    )
    unsupported_params = SelectField(
        "Parameters a target cannot honour",
        choices=[
            ("error", "Refuse the request (400 naming the parameter)"),
            ("drop", "Leave them out (named in x-modelyard-dropped-params)"),
        ],
        default="error",
        render_kw={"class": "form-select"},
    )
    is_active = BooleanField("Active", default=True, render_kw={"class": "form-check-input"})


def _values(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": clean_text(data.get("name")),
        "description": clean_text(data.get("description")),
        "targets": parse_targets(str(data.get("targets") or "")),
        "cache_ttl_seconds": data.get("cache_ttl_seconds"),
        "cache_shared": bool(data.get("cache_shared")),
        "unsupported_params": data.get("unsupported_params") or "error",
        "is_active": bool(data.get("is_active")),
    }


class GatewayRouteAdmin(StaffView, model=GatewayRoute):
    """Named routes (model aliases) with their ordered targets."""

    name = "Route"
    name_plural = "Routes"
    icon = "fa-solid fa-route"
    can_export = False
    column_list = [
        GatewayRoute.id,
        GatewayRoute.name,
        GatewayRoute.targets,
        GatewayRoute.cache_ttl_seconds,
        GatewayRoute.unsupported_params,
        GatewayRoute.is_active,
        GatewayRoute.managed_by_file,
    ]
    column_searchable_list = [GatewayRoute.name]
    column_sortable_list = [GatewayRoute.name]
    column_formatters = {GatewayRoute.targets: lambda m, _a: format_targets(m.targets)}
    column_formatters_detail = {GatewayRoute.targets: lambda m, _a: format_targets(m.targets)}
    form = RouteForm
    form_columns = [
        "name",
        "description",
        "targets",
        "cache_ttl_seconds",
        "cache_shared",
        "unsupported_params",
        "is_active",
    ]

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        spec = validated(RouteSpec, _values(data))
        async with self.app_state.database.sessions() as session:
            route = await route_records.create_route(session, actor=self.actor(request), spec=spec)
        self.app_state.gateway.invalidate()
        return route

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        async with self.app_state.database.sessions() as session:
            route = await route_records.get_route(session, int(pk))
            updated = await route_records.update_route(
                session, actor=self.actor(request), route=route, changes=_values(data)
            )
        self.app_state.gateway.invalidate()
        return updated

    async def delete_model(self, request: Request, pk: Any) -> None:
        async with self.app_state.database.sessions() as session:
            route = await route_records.get_route(session, int(pk))
            await route_records.delete_route(session, actor=self.actor(request), route=route)
        self.app_state.gateway.invalidate()
