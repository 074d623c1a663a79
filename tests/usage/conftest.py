"""Fixtures for usage tests: the usage router on the app, the gateway fixtures, and
helpers to read the usage table."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.api.routes import usage as usage_routes
from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from modelyard.usage.recorder import UsageRecorder
from tests.gateway.conftest import asgi_http as asgi_http
from tests.gateway.conftest import openai_provider as openai_provider
from tests.gateway.conftest import sdk as sdk
from tests.gateway.conftest import upstream as upstream
from tests.gateway.conftest import user_token as user_token


@pytest.fixture(autouse=True)
def usage_router(app: FastAPI) -> None:
    """Serve ``/v2/usage`` until the app includes the router itself."""
    paths = {getattr(route, "path", None) for route in app.router.routes}
    if "/v2/usage" not in paths:
        app.include_router(usage_routes.router)


@pytest.fixture
def recorder(app: FastAPI) -> UsageRecorder:
    usage: UsageRecorder = app.state.modelyard.usage
    return usage


async def usage_rows(database: Database) -> list[UsageRecord]:
    """Every usage record, oldest first."""
    async with database.sessions() as session:
        return list((await session.scalars(select(UsageRecord).order_by(UsageRecord.id))).all())
