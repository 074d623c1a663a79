"""The audit log: one row per change, naming the fields changed, never a secret's value."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import AuditLogEntry, User
from modelyard.security.redaction import redact

__all__ = ["record_audit"]


def record_audit(
    session: AsyncSession,
    *,
    actor: User | None,
    action: str,
    entity_type: str,
    entity_id: int | None,
    entity_name: str | None = None,
    changed_fields: Iterable[str] = (),
    detail: str | None = None,
) -> AuditLogEntry:
    """Add an audit row to ``session``; it commits with the change it describes."""
    entry = AuditLogEntry(
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else None,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        entity_name=entity_name,
        changed_fields=sorted(changed_fields),
        detail=redact(detail) if detail else None,
    )
    session.add(entry)
    return entry
