"""The models as the pages show them: the caller's model list (:mod:`modelyard.model_list`,
the source ``GET /v1/models`` reads too), the usable ones first, then the catalog models
locked for want of a key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import User
from modelyard.model_list import ListedModel, load_model_list
from modelyard.model_list.entries import CHAT_TASKS
from modelyard.providers.kinds import ProviderKind

__all__ = ["CHAT_TASKS", "CatalogModel", "load_catalog"]

#: One model as a card or a dropdown option.
CatalogModel = ListedModel


async def load_catalog(
    session: AsyncSession,
    *,
    user: User,
    system_keys: Mapping[ProviderKind, Sequence[str]],
    default_prices: Mapping[str, tuple[Decimal, Decimal]] | None = None,
) -> list[ListedModel]:
    """Every model ``user`` may use, then the locked catalog models."""
    listed = await load_model_list(
        session, user=user, system_keys=system_keys, default_prices=default_prices
    )
    return [*listed.usable, *listed.locked]
