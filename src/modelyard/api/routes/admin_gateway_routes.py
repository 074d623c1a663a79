"""Staff API for named gateway routes (model aliases with priority lists)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from modelyard.api.deps import SessionDep, StaffUser, refresh_gateway_caches
from modelyard.db.models import GatewayRoute
from modelyard.gateway import route_records
from modelyard.gateway.parameter_policy import UnsupportedParams
from modelyard.gateway.route_specs import RouteSpec

router = APIRouter(
    prefix="/v2/admin/routes", tags=["admin"], dependencies=[Depends(refresh_gateway_caches)]
)


class RoutePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    targets: list[dict[str, Any]]
    cache_ttl_seconds: int | None
    cache_shared: bool
    unsupported_params: str
    is_active: bool
    managed_by_file: bool
    created_at: datetime
    updated_at: datetime


class RouteUpdate(BaseModel):
    """Fields left out stay as they are; the whole route is validated again."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    targets: list[dict[str, Any]] | None = None
    cache_ttl_seconds: int | None = None
    cache_shared: bool | None = None
    #: ``error`` (a 400 for a parameter a target cannot honour) or ``drop`` (left out).
    unsupported_params: UnsupportedParams | None = None
    is_active: bool | None = None


@router.get("")
async def list_routes(_staff: StaffUser, session: SessionDep) -> list[RoutePublic]:
    routes = await session.execute(select(GatewayRoute).order_by(GatewayRoute.name))
    return [RoutePublic.model_validate(route) for route in routes.scalars()]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_route(body: RouteSpec, staff: StaffUser, session: SessionDep) -> RoutePublic:
    """Create a route; requests naming it try its targets in order."""
    route = await route_records.create_route(session, actor=staff, spec=body)
    return RoutePublic.model_validate(route)


@router.get("/{route_id}")
async def get_route(route_id: int, _staff: StaffUser, session: SessionDep) -> RoutePublic:
    return RoutePublic.model_validate(await route_records.get_route(session, route_id))


@router.patch("/{route_id}")
async def update_route(
    route_id: int, body: RouteUpdate, staff: StaffUser, session: SessionDep
) -> RoutePublic:
    route = await route_records.get_route(session, route_id)
    changes = body.model_dump(exclude_unset=True)
    updated = await route_records.update_route(session, actor=staff, route=route, changes=changes)
    return RoutePublic.model_validate(updated)


@router.delete("/{route_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_route(route_id: int, staff: StaffUser, session: SessionDep) -> None:
    route = await route_records.get_route(session, route_id)
    await route_records.delete_route(session, actor=staff, route=route)
