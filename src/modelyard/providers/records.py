"""Admin operations on provider records; each change writes its audit row in the same
transaction, so a change and its audit entry land together or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from modelyard.audit import record_audit
from modelyard.db.models import Provider, User
from modelyard.db.types import utcnow
from modelyard.errors import BadRequestError, ConflictError, NotFoundError
from modelyard.providers.connection import ConnectionResult
from modelyard.providers.key_format import InvalidKeyFormat, check_key_format, header_safe
from modelyard.providers.kinds import ProviderKind, kind_info

__all__ = [
    "SECRET_FIELDS",
    "create_provider",
    "delete_provider",
    "get_provider",
    "save_test_result",
    "set_active",
    "set_default",
    "update_provider",
]

SECRET_FIELDS = frozenset({"api_key", "organization_id"})
#: How often a set-default that lost a race with another one is tried again.
DEFAULT_RACE_RETRIES = 5


def _check_editable(provider: Provider) -> None:
    if provider.managed_by_file:
        raise ConflictError(
            f"Provider {provider.name!r} is managed by the MODELYARD_CONFIG file; "
            "change it there and restart.",
            code="managed_by_file",
        )


def _check_key(kind: str, values: Mapping[str, Any]) -> None:
    key = values.get("api_key")
    info = kind_info(kind)
    if key is not None and info.key_prefix:
        try:
            check_key_format(kind, key)
        except InvalidKeyFormat as exc:
            raise BadRequestError(str(exc), param="api_key", code="invalid_key_format") from None
    for field in SECRET_FIELDS:  # every kind's secrets go out in HTTP headers
        secret = values.get(field)
        if isinstance(secret, str) and not header_safe(secret):
            raise BadRequestError(
                f"The {field} must be printable ASCII characters only.",
                param=field,
                code="invalid_key_format",
            )
    if kind in (ProviderKind.OPENAI_COMPATIBLE, ProviderKind.CUSTOM) and not values.get("base_url"):
        raise BadRequestError(
            f"A {info.label} provider needs a base_url.", param="base_url", code="missing_base_url"
        )


async def get_provider(session: AsyncSession, provider_id: int) -> Provider:
    provider = await session.scalar(
        select(Provider)
        .options(selectinload(Provider.created_by), selectinload(Provider.updated_by))
        .where(Provider.id == provider_id)
    )
    if provider is None:
        raise NotFoundError(f"No provider with id {provider_id}.")
    return provider


def file_default_message(current: Provider, wanted: str) -> str:
    return (
        f"{current.name!r} is the default provider, set by the file (MODELYARD_CONFIG): "
        f"{wanted!r} cannot be made the default here. Change is_default in that file "
        "and restart."
    )


async def check_default_is_ours(session: AsyncSession, wanted: str, wanted_id: int | None) -> None:
    """Refuse (409) to take the default over from a provider the file made the default: the
    file would take it back at the next start, so it is changed there."""
    current = await session.scalar(
        select(Provider).where(Provider.is_default.is_(True), Provider.managed_by_file.is_(True))
    )
    if current is not None and current.id != wanted_id:
        raise ConflictError(file_default_message(current, wanted), code="file_managed_default")


async def _clear_default(session: AsyncSession, keep_id: int | None) -> None:
    """Unset the current default. Every provider row (a handful) is locked first, in id
    order, until the commit: concurrent changes of the default take turns on PostgreSQL
    (SQLite serialises writers anyway); the unique index stays the last word."""
    await session.execute(select(Provider.id).order_by(Provider.id).with_for_update())
    statement = update(Provider).where(Provider.is_default.is_(True))
    if keep_id is not None:
        statement = statement.where(Provider.id != keep_id)
    await session.execute(statement.values(is_default=False))


def _conflict(exc: IntegrityError, name: str) -> ConflictError:
    if "default" in str(exc.orig).lower():
        return ConflictError(
            "Another provider became the default at the same time; try again.",
            code="default_conflict",
        )
    return ConflictError(
        f"A provider named {name!r} exists already.", param="name", code="name_taken"
    )


async def _commit(session: AsyncSession, name: str, *, flush_only: bool = False) -> None:
    """Commit (or flush), turning a unique-constraint failure into a clear 409."""
    try:
        await (session.flush() if flush_only else session.commit())
    except IntegrityError as exc:
        await session.rollback()
        raise _conflict(exc, name) from None


async def create_provider(
    session: AsyncSession, *, actor: User | None, values: Mapping[str, Any]
) -> Provider:
    """Create a provider from validated ``values``; a default one takes the default over."""
    values = dict(values)
    _check_key(values["kind"], values)
    if values.get("is_default") and not values.get("is_active", True):
        raise BadRequestError("An inactive provider cannot be the default.", param="is_default")
    provider = Provider(**values, created_by_id=actor.id if actor else None)
    provider.updated_by_id = provider.created_by_id
    if provider.is_default:
        if not provider.managed_by_file:
            await check_default_is_ours(session, provider.name, None)
        await _clear_default(session, None)
    session.add(provider)
    await _commit(session, provider.name, flush_only=True)
    record_audit(
        session,
        actor=actor,
        action="create",
        entity_type="provider",
        entity_id=provider.id,
        entity_name=provider.name,
        changed_fields=[name for name, value in values.items() if value is not None],
    )
    await _commit(session, provider.name)
    return await get_provider(session, provider.id)


async def update_provider(
    session: AsyncSession, *, actor: User | None, provider: Provider, changes: Mapping[str, Any]
) -> Provider:
    """Apply ``changes`` (only the fields given); records which fields really changed."""
    _check_editable(provider)
    merged = {"base_url": provider.base_url, **changes}
    _check_key(provider.kind, merged)
    changed = [name for name, value in changes.items() if getattr(provider, name) != value]
    if changes.get("is_default") and not changes.get("is_active", provider.is_active):
        raise BadRequestError(
            "An inactive provider cannot be the default; activate it first.", param="is_default"
        )
    if changes.get("is_active") is False and provider.is_default:
        changes = {**changes, "is_default": False}
        changed.append("is_default")
    if not changed:
        return provider
    if changes.get("is_default"):
        if not provider.managed_by_file:
            await check_default_is_ours(session, provider.name, provider.id)
        await _clear_default(session, provider.id)
    for name in set(changed):
        setattr(provider, name, changes[name])
    provider.updated_by_id = actor.id if actor else None
    record_audit(
        session,
        actor=actor,
        action="update",
        entity_type="provider",
        entity_id=provider.id,
        entity_name=provider.name,
        changed_fields=set(changed),
    )
    await _commit(session, provider.name)
    return await get_provider(session, provider.id)


async def set_default(session: AsyncSession, *, actor: User | None, provider_id: int) -> Provider:
    """Make one active provider the default; safe against concurrent calls."""
    for attempt in range(DEFAULT_RACE_RETRIES):
        provider = await get_provider(session, provider_id)
        _check_editable(provider)
        if not provider.is_active:
            raise BadRequestError(
                f"Provider {provider.name!r} is inactive; activate it before making it default."
            )
        try:
            return await update_provider(
                session, actor=actor, provider=provider, changes={"is_default": True}
            )
        except ConflictError as exc:
            if exc.code != "default_conflict" or attempt == DEFAULT_RACE_RETRIES - 1:
                raise
            session.expire_all()
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


async def set_active(
    session: AsyncSession, *, actor: User | None, providers: Sequence[Provider], active: bool
) -> list[Provider]:
    """Activate or deactivate ``providers`` (deactivating the default clears the default)."""
    for provider in providers:
        _check_editable(provider)
    return [
        await update_provider(
            session, actor=actor, provider=provider, changes={"is_active": active}
        )
        for provider in providers
    ]


async def delete_provider(session: AsyncSession, *, actor: User | None, provider: Provider) -> None:
    _check_editable(provider)
    record_audit(
        session,
        actor=actor,
        action="delete",
        entity_type="provider",
        entity_id=provider.id,
        entity_name=provider.name,
    )
    await session.delete(provider)
    await session.commit()


async def save_test_result(
    session: AsyncSession, *, actor: User | None, provider: Provider, result: ConnectionResult
) -> Provider:
    """Store a connection test's outcome on the provider and in the audit log."""
    provider.last_test_status = "ok" if result.ok else "failed"
    provider.last_tested_at = utcnow()
    provider.last_test_message = result.message
    record_audit(
        session,
        actor=actor,
        action="test_connection",
        entity_type="provider",
        entity_id=provider.id,
        entity_name=provider.name,
        changed_fields=["last_test_message", "last_test_status", "last_tested_at"],
        detail=result.message,
    )
    await session.commit()
    return provider
