"""A fine-tuned model, once a job succeeds: on its provider and in the model catalog.

The model id goes to the provider's ``fine_tuned_model_id`` (with an audit row) and into
the catalog (:class:`~modelyard.db.models.LlmModel`, the provider's kind) with the base
model's prices and context length when the catalog knows the base model, so the gateway
routes the name at once (after its caches are refreshed; see :func:`publish_model`).
A provider declared in the ``MODELYARD_CONFIG`` file gets its field back from the file at
the next start; the catalog entry stays.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.audit import record_audit
from modelyard.db.models import FineTuneCommand, LlmModel, Provider
from modelyard.finetune.inserts import insert_new

__all__ = ["publish_model"]

#: Longest model id the provider field and the catalog hold.
MAX_MODEL_ID = 200


async def _base_entry(session: AsyncSession, kind: str, base: str | None) -> LlmModel | None:
    """The catalog entry of the base model: exact, else the longest id it starts with
    (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``)."""
    if not base:
        return None
    rows = await session.scalars(select(LlmModel).where(LlmModel.provider_kind == kind))
    matches = [row for row in rows if base == row.model_id or base.startswith(row.model_id + "-")]
    return max(matches, key=lambda row: len(row.model_id), default=None)


async def publish_model(
    session: AsyncSession, command: FineTuneCommand, provider: Provider | None, model_id: str
) -> bool:
    """Record ``model_id`` on the command, its provider and the catalog (not committed).

    Returns whether the provider or the catalog changed (the gateway's caches must then be
    refreshed)."""
    model_id = model_id[:MAX_MODEL_ID]
    command.fine_tuned_model = model_id
    changed = False
    if provider is not None and provider.fine_tuned_model_id != model_id:
        provider.fine_tuned_model_id = model_id
        record_audit(
            session,
            actor=None,
            action="fine_tuned",
            entity_type="provider",
            entity_id=provider.id,
            entity_name=provider.name,
            changed_fields=["fine_tuned_model_id"],
            detail=f"fine-tuning command {command.id} produced {model_id}",
        )
        changed = True
    kind = provider.kind if provider is not None else command.provider_kind
    if kind is None:
        return changed
    existing = await session.scalar(
        select(LlmModel).where(LlmModel.provider_kind == kind, LlmModel.model_id == model_id)
    )
    if existing is not None:
        if not existing.is_active:
            existing.is_active = True
            changed = True
        return changed
    base = await _base_entry(session, kind, command.model)
    row = {
        "provider_kind": kind,
        "model_id": model_id,
        "display_name": f"{model_id} (fine-tuned)"[:MAX_MODEL_ID],
        "task": "chat",
        "input_price_per_million": base.input_price_per_million if base else Decimal(0),
        "output_price_per_million": base.output_price_per_million if base else Decimal(0),
        "context_length": base.context_length if base else None,
        "description": (
            f"Fine-tuned from {command.model} by fine-tuning command {command.id}. "
            + (
                "Prices copied from the base model; fine-tuned models often cost more: "
                "adjust them in /admin."
                if base
                else "Prices unknown: set them in /admin."
            )
        ),
    }
    await insert_new(session, LlmModel, [row], ("provider_kind", "model_id"))
    return True
