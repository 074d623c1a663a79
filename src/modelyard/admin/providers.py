"""The providers view: secrets write-only, every change through ``providers.records``.

Bulk actions (test connection, set as default, activate, deactivate) act on the rows
ticked in the list; their outcome comes back as a flash message or, for connection
tests, as a page listing each provider's result.

While the default provider is one the file declares (``managed_by_file``), the admin
refuses to make another one the default (Set as default, or the Default box of a form):
the file would take the default back at the next start, so it is changed there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqladmin import Flash, action
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette import status
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from wtforms import Form

from modelyard.admin.base import StaffView, clean_text, selected_ids, validated
from modelyard.admin.forms import ProviderCreateForm, ProviderEditForm
from modelyard.admin.templates import TEST_RESULTS_TEMPLATE
from modelyard.db.models import Provider
from modelyard.errors import BadRequestError, ModelyardError, NotFoundError
from modelyard.providers import records
from modelyard.providers.record_schemas import ProviderCreate, ProviderUpdate
from modelyard.providers.recorded_checks import check_and_record

__all__ = ["ProviderAdmin", "managed_message"]

_EDITABLE = ("name", "base_url", "base_model", "fine_tuned_model_id", "is_active", "is_default")


def managed_message(provider: Provider) -> str:
    return (
        f"Provider {provider.name!r} is managed by the file (MODELYARD_CONFIG) and cannot be "
        "edited here; change it in that file and restart."
    )


def _secret_state(model: Any, attribute: Any) -> str:
    """Secrets are shown as set / not set, never their value."""
    return "set" if getattr(model, str(attribute)) else "not set"


def _origin(model: Any, _attribute: Any) -> str:
    return "managed by the file" if model.managed_by_file else "admin"


def _email(model: Any, attribute: Any) -> str:
    user = getattr(model, str(attribute))
    return user.email if user is not None else ""


def _secret_value(value: Any) -> str | None:
    text = str(value).strip() if value else ""
    return text or None


async def _load(session: AsyncSession, ids: list[int]) -> list[Provider]:
    found = {p.id: p for p in (await session.scalars(select(Provider).where(Provider.id.in_(ids))))}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise NotFoundError(f"No provider with id {', '.join(missing)}.")
    return [found[i] for i in ids]


def _names(providers: list[Provider]) -> str:
    return ", ".join(provider.name for provider in providers)


class ProviderAdmin(StaffView, model=Provider):
    """Admin-managed providers and their connection status."""

    name = "Provider"
    name_plural = "Providers"
    icon = "fa-solid fa-plug"
    can_export = False  # an export would write the decrypted keys out
    column_list = [
        Provider.id,
        Provider.name,
        Provider.kind,
        Provider.is_default,
        Provider.is_active,
        Provider.managed_by_file,
        Provider.api_key,
        Provider.organization_id,
        Provider.base_url,
        Provider.base_model,
        Provider.last_test_status,
        Provider.last_tested_at,
        Provider.last_test_message,
    ]
    column_details_list = [
        *column_list,
        Provider.fine_tuned_model_id,
        Provider.created_by,
        Provider.updated_by,
        Provider.created_at,
        Provider.updated_at,
    ]
    column_labels = {
        Provider.name: "Name",
        Provider.kind: "Kind",
        Provider.is_default: "Default",
        Provider.is_active: "Active",
        Provider.managed_by_file: "Managed by",
        Provider.api_key: "API key",
        Provider.organization_id: "Organization ID",
        Provider.base_url: "Base URL",
        Provider.base_model: "Base model",
        Provider.fine_tuned_model_id: "Fine-tuned model ID",
        Provider.last_test_status: "Last test",
        Provider.last_tested_at: "Tested at",
        Provider.last_test_message: "Test message",
        Provider.created_by: "Created by",
        Provider.updated_by: "Updated by",
    }
    column_searchable_list = [Provider.name, Provider.kind, Provider.base_url, Provider.base_model]
    column_sortable_list = [Provider.id, Provider.name, Provider.kind, Provider.last_tested_at]
    column_default_sort = [("is_default", True), ("name", False)]
    column_formatters = {
        Provider.api_key: _secret_state,
        Provider.organization_id: _secret_state,
        Provider.managed_by_file: _origin,
    }
    column_formatters_detail = {
        **column_formatters,
        Provider.created_by: _email,
        Provider.updated_by: _email,
    }
    form_columns = [*_EDITABLE, "kind", *records.SECRET_FIELDS]
    form_create_rules = list(ProviderCreateForm().data)
    form_edit_rules = list(ProviderEditForm().data)

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        return ProviderCreateForm if "kind" in (rules or ["kind"]) else ProviderEditForm

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in _EDITABLE}

    async def check_can_edit(self, request: Request, model: Any) -> bool:
        if not model.managed_by_file:
            return True
        edit_url = request.url_for("admin:edit", identity=self.identity, pk=str(model.id))
        if request.url.path == edit_url.path:
            raise HTTPException(status.HTTP_409_CONFLICT, managed_message(model))
        return False

    async def check_can_delete(self, request: Request, model: Any) -> bool:
        return not model.managed_by_file

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        values: dict[str, Any] = {name: clean_text(data.get(name)) for name in _EDITABLE}
        values.update(
            kind=data.get("kind"),
            is_active=bool(data.get("is_active")),
            is_default=bool(data.get("is_default")),
            **{name: _secret_value(data.get(name)) for name in records.SECRET_FIELDS},
        )
        body = validated(ProviderCreate, values)
        async with self.app_state.database.sessions() as session:
            return await records.create_provider(
                session, actor=self.actor(request), values=body.model_dump()
            )

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        changes = self._changes(data)
        async with self.app_state.database.sessions() as session:
            provider = await records.get_provider(session, int(pk))
            return await records.update_provider(
                session, actor=self.actor(request), provider=provider, changes=changes
            )

    @staticmethod
    def _changes(data: Mapping[str, Any]) -> dict[str, Any]:
        """The edit form's values; a blank secret is kept, a ticked "remove" clears it."""
        changes: dict[str, Any] = {name: clean_text(data.get(name)) for name in _EDITABLE}
        changes.update(
            is_active=bool(data.get("is_active")), is_default=bool(data.get("is_default"))
        )
        for name in records.SECRET_FIELDS:
            value = _secret_value(data.get(name))
            if value is not None:
                changes[name] = value
            elif data.get(f"clear_{name}"):
                changes[name] = None
        return validated(ProviderUpdate, changes).model_dump(exclude_unset=True)

    async def delete_model(self, request: Request, pk: Any) -> None:
        async with self.app_state.database.sessions() as session:
            provider = await records.get_provider(session, int(pk))
            await records.delete_provider(session, actor=self.actor(request), provider=provider)

    # -- bulk actions -------------------------------------------------------------------

    def _list_url(self, request: Request) -> str:
        return str(request.url_for("admin:list", identity=self.identity))

    @action("test-connection", "Test connection")
    async def test_connection(self, request: Request) -> Response:
        state = self.app_state
        try:
            async with state.database.sessions() as session:
                outcomes = await check_and_record(
                    session,
                    actor=self.actor(request),
                    providers=await _load(session, selected_ids(request, "provider")),
                    http=state.gateway.http,
                    timeout=state.settings.connection_test_timeout,
                )
        except ModelyardError as exc:
            Flash.error(request, exc.message)
            return self.back_to_list(request)
        results = [
            {
                "name": provider.name,
                "ok": result.ok,
                "message": result.message,
                "latency_ms": result.latency_ms,
            }
            for provider, result in outcomes
        ]
        context = {"results": results, "back_url": self._list_url(request)}
        return await self.templates.TemplateResponse(request, TEST_RESULTS_TEMPLATE, context)

    @action("set-default", "Set as default")
    async def make_default(self, request: Request) -> Response:
        try:
            ids = selected_ids(request, "provider")
            if len(ids) != 1:
                raise BadRequestError(
                    f"Select exactly one provider to make it the default ({len(ids)} selected)."
                )
            async with self.app_state.database.sessions() as session:
                provider = await records.set_default(
                    session, actor=self.actor(request), provider_id=ids[0]
                )
        except ModelyardError as exc:
            Flash.error(request, exc.message)
        else:
            Flash.success(request, f"{provider.name} is now the default provider.")
        return self.back_to_list(request)

    @action("activate", "Activate")
    async def activate(self, request: Request) -> Response:
        return await self._set_active(request, active=True)

    @action("deactivate", "Deactivate")
    async def deactivate(self, request: Request) -> Response:
        return await self._set_active(request, active=False)

    async def _set_active(self, request: Request, *, active: bool) -> Response:
        try:
            async with self.app_state.database.sessions() as session:
                providers = await records.set_active(
                    session,
                    actor=self.actor(request),
                    providers=await _load(session, selected_ids(request, "provider")),
                    active=active,
                )
        except ModelyardError as exc:
            Flash.error(request, exc.message)
        else:
            verb = "Activated" if active else "Deactivated"
            Flash.success(request, f"{verb}: {_names(providers)}.")
        return self.back_to_list(request)
