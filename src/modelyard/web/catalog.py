"""The catalog as the pages show it: each model with the name the gateway knows it by and
whether the signed-in user can use it (a credential exists for its provider kind), and
the trained models the user may use (``local/<name>``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import LlmModel, TrainedModel, User
from modelyard.providers.credentials import usable_kinds
from modelyard.providers.kinds import ProviderKind, kind_info
from modelyard.training.models import list_visible

__all__ = ["CHAT_TASKS", "CatalogModel", "load_catalog"]

#: Tasks the chat page can talk to.
CHAT_TASKS = frozenset({"chat"})

_KIND_VALUES = frozenset(kind.value for kind in ProviderKind)


@dataclass(frozen=True)
class CatalogModel:
    """One active catalog model, as a card or a dropdown option."""

    #: The name sent to the gateway, also the chat page's path: the model id when it is
    #: unambiguous, else ``kind/model`` (``groq/openai/gpt-oss-120b``).
    name: str
    model_id: str
    display_name: str
    kind: ProviderKind
    provider_label: str
    task: str
    input_price_per_million: Decimal
    output_price_per_million: Decimal
    context_length: int | None
    description: str | None
    usable: bool
    #: Whether a user can add a key of their own for this model's provider.
    user_keys: bool

    @property
    def chat(self) -> bool:
        return self.task in CHAT_TASKS

    def matches(self, name: str) -> bool:
        """Whether ``name`` (as in a URL) means this model."""
        return name in (self.name, f"{self.kind.value}/{self.model_id}")


def _gateway_name(model: LlmModel, ids: Counter[str]) -> str:
    prefix = model.model_id.partition("/")[0]
    if ids[model.model_id] > 1 or prefix in _KIND_VALUES:
        return f"{model.provider_kind}/{model.model_id}"
    return model.model_id


async def load_catalog(
    session: AsyncSession,
    *,
    user: User,
    system_keys: Mapping[ProviderKind, Sequence[str]],
) -> list[CatalogModel]:
    """Every active model, usable ones first, then by provider and catalog order."""
    usable = await usable_kinds(session, user=user, system_keys=system_keys)
    rows = list(
        (
            await session.scalars(
                select(LlmModel)
                .where(LlmModel.is_active.is_(True))
                .order_by(LlmModel.provider_kind, LlmModel.id)
            )
        ).all()
    )
    ids = Counter(row.model_id for row in rows)
    models = []
    for row in rows:
        kind = ProviderKind(row.provider_kind)
        info = kind_info(kind)
        models.append(
            CatalogModel(
                name=_gateway_name(row, ids),
                model_id=row.model_id,
                display_name=row.display_name,
                kind=kind,
                provider_label=info.label,
                task=row.task,
                input_price_per_million=row.input_price_per_million,
                output_price_per_million=row.output_price_per_million,
                context_length=row.context_length,
                description=row.description,
                usable=kind in usable,
                user_keys=info.user_keys,
            )
        )
    models += [_trained(model) for model in await list_visible(session, user)]
    models.sort(key=lambda model: not model.usable)
    return models


def _trained(model: TrainedModel) -> CatalogModel:
    return CatalogModel(
        name=f"local/{model.name}",
        model_id=model.name,
        display_name=model.name,
        kind=ProviderKind.LOCAL,
        provider_label=kind_info(ProviderKind.LOCAL).label,
        task=model.task,
        input_price_per_million=Decimal(0),
        output_price_per_million=Decimal(0),
        context_length=None,
        description=f"Fine-tuned by modelyard from {model.base_model} (job {model.job_id}).",
        usable=True,
        user_keys=False,
    )
