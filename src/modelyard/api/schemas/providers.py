"""Admin-managed providers: create, update (secrets write-only) and public view."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from modelyard.providers.kinds import ProviderKind
from modelyard.providers.record_schemas import ProviderCreate, ProviderUpdate

__all__ = [
    "ProviderCreate",
    "ProviderIds",
    "ProviderPublic",
    "ProviderTestReport",
    "ProviderUpdate",
]


class ProviderPublic(BaseModel):
    """A provider as shown: secrets only as set / not set."""

    id: int
    name: str
    kind: ProviderKind
    has_api_key: bool
    has_organization_id: bool
    base_url: str | None
    effective_base_url: str | None
    base_model: str | None
    fine_tuned_model_id: str | None
    is_active: bool
    is_default: bool
    managed_by_file: bool
    last_test_status: str | None
    last_tested_at: datetime | None
    last_test_message: str | None
    created_by: str | None
    updated_by: str | None
    created_at: datetime
    updated_at: datetime


class ProviderIds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=500)


class ProviderTestReport(BaseModel):
    id: int
    name: str
    ok: bool
    message: str
    status_code: int | None
    latency_ms: float
