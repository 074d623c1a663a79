"""Audit-log entries as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

__all__ = ["AuditLogPublic"]


class AuditLogPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    actor_email: str | None
    action: str
    entity_type: str
    entity_id: int | None
    entity_name: str | None
    changed_fields: list[str]
    detail: str | None
