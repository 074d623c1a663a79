"""Liveness, readiness (database reachable) and Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from modelyard.api.deps import SessionDep, app_state
from modelyard.errors import AuthenticationError, ServiceUnavailableError

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(session: SessionDep) -> dict[str, str]:
    """The process can serve: the database answers."""
    try:
        await session.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailableError(
            f"Database unreachable ({type(exc).__name__}); check DATABASE_URL and the server.",
            code="database_unavailable",
        ) from None
    return {"status": "ready", "database": session.get_bind().dialect.name}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of the metrics (every worker's, with several; see
    :mod:`~modelyard.api.metrics_exposition`); with
    ``MODELYARD_METRICS_TOKEN`` set, only for ``Authorization: Bearer <that token>``."""
    expected = app_state(request).settings.metrics_token
    if expected:
        scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            supplied.strip().encode(), expected.encode()
        ):
            raise AuthenticationError(
                "The metrics need 'Authorization: Bearer <MODELYARD_METRICS_TOKEN>'.",
                code="metrics_token_required",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    body = app_state(request).metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
