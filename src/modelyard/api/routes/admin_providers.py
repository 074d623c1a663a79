"""Staff API for admin-managed providers: CRUD, bulk actions and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import selectinload

from modelyard.api.deps import SessionDep, StaffUser, app_state, refresh_gateway_caches
from modelyard.api.schemas.audit import AuditLogPublic
from modelyard.api.schemas.providers import (
    ProviderCreate,
    ProviderIds,
    ProviderPublic,
    ProviderTestReport,
    ProviderUpdate,
)
from modelyard.db.models import AuditLogEntry, Provider
from modelyard.errors import BadRequestError, NotFoundError
from modelyard.providers import records
from modelyard.providers.kinds import ProviderKind, kind_info
from modelyard.providers.recorded_checks import check_and_record

router = APIRouter(
    prefix="/v2/admin", tags=["admin"], dependencies=[Depends(refresh_gateway_caches)]
)


def provider_public(provider: Provider) -> ProviderPublic:
    """The public view of ``provider``: secrets as set / not set."""
    return ProviderPublic(
        id=provider.id,
        name=provider.name,
        kind=ProviderKind(provider.kind),
        has_api_key=provider.api_key is not None,
        has_organization_id=provider.organization_id is not None,
        base_url=provider.base_url,
        effective_base_url=provider.base_url or kind_info(provider.kind).default_base_url,
        base_model=provider.base_model,
        fine_tuned_model_id=provider.fine_tuned_model_id,
        is_active=provider.is_active,
        is_default=provider.is_default,
        managed_by_file=provider.managed_by_file,
        last_test_status=provider.last_test_status,
        last_tested_at=provider.last_tested_at,
        last_test_message=provider.last_test_message,
        created_by=provider.created_by.email if provider.created_by else None,
        updated_by=provider.updated_by.email if provider.updated_by else None,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


async def _providers(session: SessionDep, ids: list[int]) -> list[Provider]:
    found = {
        provider.id: provider
        for provider in (
            await session.execute(
                select(Provider)
                .options(selectinload(Provider.created_by), selectinload(Provider.updated_by))
                .where(Provider.id.in_(ids))
            )
        ).scalars()
    }
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise NotFoundError(f"No provider with id {', '.join(missing)}.", param="ids")
    return [found[i] for i in dict.fromkeys(ids)]


@router.get("/providers")
async def list_providers(
    _staff: StaffUser,
    session: SessionDep,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> list[ProviderPublic]:
    """Every provider, the default first; ``search`` matches name, kind, URL or model."""
    statement = select(Provider).options(
        selectinload(Provider.created_by), selectinload(Provider.updated_by)
    )
    if search:
        pattern = f"%{search}%"
        statement = statement.where(
            or_(
                Provider.name.ilike(pattern),
                Provider.kind.ilike(pattern),
                cast(Provider.base_url, String).ilike(pattern),
                Provider.base_model.ilike(pattern),
            )
        )
    statement = statement.order_by(Provider.is_default.desc(), Provider.id)
    return [provider_public(p) for p in (await session.execute(statement)).scalars()]


@router.post("/providers", status_code=status.HTTP_201_CREATED)
async def create_provider(
    body: ProviderCreate, staff: StaffUser, session: SessionDep
) -> ProviderPublic:
    """Create a provider; its key is stored encrypted and never shown again."""
    provider = await records.create_provider(session, actor=staff, values=body.model_dump())
    return provider_public(provider)


@router.get("/providers/{provider_id}")
async def get_provider(provider_id: int, _staff: StaffUser, session: SessionDep) -> ProviderPublic:
    return provider_public(await records.get_provider(session, provider_id))


@router.patch("/providers/{provider_id}")
async def update_provider(
    provider_id: int, body: ProviderUpdate, staff: StaffUser, session: SessionDep
) -> ProviderPublic:
    """Change the fields given; ``"api_key": null`` removes the key."""
    provider = await records.get_provider(session, provider_id)
    changes = body.model_dump(exclude_unset=True)
    for name in ("name", "is_active", "is_default"):
        if name in changes and changes[name] is None:
            raise BadRequestError(f"{name} cannot be null.", param=name)
    updated = await records.update_provider(
        session, actor=staff, provider=provider, changes=changes
    )
    return provider_public(updated)


@router.delete("/providers/{provider_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_provider(provider_id: int, staff: StaffUser, session: SessionDep) -> None:
    provider = await records.get_provider(session, provider_id)
    await records.delete_provider(session, actor=staff, provider=provider)


@router.post("/providers/actions/test")
async def test_connection(
    body: ProviderIds, staff: StaffUser, session: SessionDep, request: Request
) -> list[ProviderTestReport]:
    """Test each selected provider with a real, cheap call; stores and reports the outcome."""
    state = app_state(request)
    outcomes = await check_and_record(
        session,
        actor=staff,
        providers=await _providers(session, body.ids),
        http=state.gateway.http,
        timeout=state.settings.connection_test_timeout,
    )
    return [
        ProviderTestReport(
            id=provider.id,
            name=provider.name,
            ok=result.ok,
            message=result.message,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
        )
        for provider, result in outcomes
    ]


@router.post("/providers/actions/set-default")
async def set_default(body: ProviderIds, staff: StaffUser, session: SessionDep) -> ProviderPublic:
    """Make exactly one selected provider the default."""
    if len(set(body.ids)) != 1:
        raise BadRequestError(
            f"Select exactly one provider to make default ({len(set(body.ids))} selected).",
            param="ids",
        )
    await _providers(session, body.ids)
    return provider_public(await records.set_default(session, actor=staff, provider_id=body.ids[0]))


@router.post("/providers/actions/activate")
async def activate(
    body: ProviderIds, staff: StaffUser, session: SessionDep
) -> list[ProviderPublic]:
    providers = await _providers(session, body.ids)
    changed = await records.set_active(session, actor=staff, providers=providers, active=True)
    return [provider_public(p) for p in changed]


@router.post("/providers/actions/deactivate")
async def deactivate(
    body: ProviderIds, staff: StaffUser, session: SessionDep
) -> list[ProviderPublic]:
    providers = await _providers(session, body.ids)
    changed = await records.set_active(session, actor=staff, providers=providers, active=False)
    return [provider_public(p) for p in changed]


@router.get("/audit-log")
async def audit_log(
    _staff: StaffUser,
    session: SessionDep,
    entity_type: Annotated[str | None, Query(max_length=40)] = None,
    entity_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditLogPublic]:
    """The newest audit entries first."""
    statement = select(AuditLogEntry)
    if entity_type:
        statement = statement.where(AuditLogEntry.entity_type == entity_type)
    if entity_id is not None:
        statement = statement.where(AuditLogEntry.entity_id == entity_id)
    statement = statement.order_by(AuditLogEntry.id.desc()).limit(limit)
    return [AuditLogPublic.model_validate(e) for e in (await session.execute(statement)).scalars()]
