"""Named routes in the database: create, update, delete (each audited), and the routes
declared in the ``MODELYARD_CONFIG`` file synced at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.audit import record_audit
from modelyard.db.models import GatewayRoute, User
from modelyard.errors import BadRequestError, ConflictError, NotFoundError
from modelyard.gateway.route_specs import RouteSpec

__all__ = ["create_route", "delete_route", "get_route", "sync_file_routes", "update_route"]


def _stored(spec: RouteSpec) -> dict[str, Any]:
    values = spec.model_dump(mode="json")
    values["targets"] = [
        {key: value for key, value in target.items() if value is not None}
        for target in values["targets"]
    ]
    return values


def _editable(route: GatewayRoute) -> None:
    if route.managed_by_file:
        raise ConflictError(
            f"Route {route.name!r} is managed by the MODELYARD_CONFIG file; change it there.",
            code="managed_by_file",
        )


async def _commit(session: AsyncSession, name: str) -> None:
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(
            f"A route named {name!r} exists already.", param="name", code="name_taken"
        ) from None


async def get_route(session: AsyncSession, route_id: int) -> GatewayRoute:
    route = await session.get(GatewayRoute, route_id)
    if route is None:
        raise NotFoundError(f"No route with id {route_id}.")
    return route


async def create_route(
    session: AsyncSession, *, actor: User | None, spec: RouteSpec, managed_by_file: bool = False
) -> GatewayRoute:
    route = GatewayRoute(**_stored(spec), managed_by_file=managed_by_file)
    session.add(route)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(
            f"A route named {spec.name!r} exists already.", param="name", code="name_taken"
        ) from None
    record_audit(
        session,
        actor=actor,
        action="create",
        entity_type="route",
        entity_id=route.id,
        entity_name=route.name,
        changed_fields=[k for k, v in _stored(spec).items() if v is not None],
    )
    await _commit(session, spec.name)
    return route


async def update_route(
    session: AsyncSession,
    *,
    actor: User | None,
    route: GatewayRoute,
    changes: Mapping[str, Any],
    from_file: bool = False,
) -> GatewayRoute:
    """Apply ``changes`` after validating the whole resulting route."""
    if not from_file:
        _editable(route)
    current = {
        "name": route.name,
        "description": route.description,
        "targets": route.targets,
        "cache_ttl_seconds": route.cache_ttl_seconds,
        "cache_shared": route.cache_shared,
        "unsupported_params": route.unsupported_params,
        "is_active": route.is_active,
    }
    try:
        spec = RouteSpec.model_validate({**current, **changes})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadRequestError(
            f"Invalid route: {'.'.join(map(str, first['loc']))}: {first['msg']}",
            param=str(first["loc"][0]),
        ) from None
    new = _stored(spec)
    changed = [name for name, value in new.items() if current[name] != value]
    if not changed:
        return route
    for name in changed:
        setattr(route, name, new[name])
    record_audit(
        session,
        actor=actor,
        action="update",
        entity_type="route",
        entity_id=route.id,
        entity_name=route.name,
        changed_fields=changed,
    )
    await _commit(session, spec.name)
    return route


async def delete_route(
    session: AsyncSession, *, actor: User | None, route: GatewayRoute, from_file: bool = False
) -> None:
    if not from_file:
        _editable(route)
    record_audit(
        session,
        actor=actor,
        action="delete",
        entity_type="route",
        entity_id=route.id,
        entity_name=route.name,
    )
    await session.delete(route)
    await session.commit()


async def sync_file_routes(session: AsyncSession, declared: Mapping[str, Any]) -> list[str]:
    """Make the file-managed routes match ``declared`` (name → route body)."""
    specs = [
        RouteSpec.model_validate({"name": name, **(body or {})}) for name, body in declared.items()
    ]
    existing = {r.name: r for r in (await session.execute(select(GatewayRoute))).scalars()}
    for name, route in existing.items():
        if route.managed_by_file and name not in declared:
            await delete_route(session, actor=None, route=route, from_file=True)
    for spec in specs:
        found = existing.get(spec.name)
        if found is None:
            await create_route(session, actor=None, spec=spec, managed_by_file=True)
        else:
            found.managed_by_file = True
            await update_route(
                session, actor=None, route=found, changes=_stored(spec), from_file=True
            )
            await session.commit()
    return [spec.name for spec in specs]
