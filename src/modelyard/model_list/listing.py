"""Build one caller's :class:`~modelyard.model_list.entries.ModelList`: one query per
table (user keys, admin providers, catalog, routes, trained models), no upstream call.

A route is listed when at least one of its targets has a provider kind the caller holds
a credential for (own key, admin provider, system key, or a keyless kind such as local);
its task, context length and price are its reachable targets' when they agree. Prices
come from :class:`modelyard.usage.pricing.Pricing`, the rules metering charges by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import (
    GatewayRoute,
    LlmModel,
    Provider,
    TrainedModel,
    User,
    UserProviderKey,
)
from modelyard.model_list.built_in import BuiltInModel, built_in_models
from modelyard.model_list.entries import ListedModel, ModelList
from modelyard.model_list.names import GatewayNames
from modelyard.model_list.vision import route_takes_images, takes_images
from modelyard.providers.credentials import kinds_with_credentials
from modelyard.providers.kinds import ProviderKind, kind_info
from modelyard.training.models import list_visible
from modelyard.usage.pricing import Pricing

__all__ = ["load_model_list"]

#: ``owned_by`` of the names this service defines itself (routes).
SERVICE_OWNER = "modelyard"

#: Which source decides an id listed by several (the gateway's resolution order).
_PRECEDENCE = ("route", "local", "trained", "catalog", "provider")

#: The order of the list.
_ORDER = ("route", "catalog", "provider", "trained", "local")


@dataclass(frozen=True)
class _ProviderRow:
    """What the list needs of an active admin provider (its key is never read here)."""

    kind: str
    has_key: bool
    base_model: str | None
    fine_tuned_model_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class _Rows:
    own_kinds: Sequence[str]
    providers: Sequence[_ProviderRow]
    catalog: Sequence[LlmModel]
    routes: Sequence[GatewayRoute]
    trained: Sequence[TrainedModel]


async def _read(session: AsyncSession, user: User | None) -> _Rows:
    own: Sequence[str] = ()
    if user is not None:
        own = (
            await session.scalars(
                select(UserProviderKey.provider).where(UserProviderKey.user_id == user.id)
            )
        ).all()
    providers = await session.execute(
        select(
            Provider.kind,
            Provider.api_key.isnot(None),
            Provider.base_model,
            Provider.fine_tuned_model_id,
            Provider.created_at,
        )
        .where(Provider.is_active.is_(True))
        .order_by(Provider.is_default.desc(), Provider.id)
    )
    catalog = await session.scalars(
        select(LlmModel).where(LlmModel.is_active.is_(True)).order_by(LlmModel.id)
    )
    routes = await session.scalars(
        select(GatewayRoute).where(GatewayRoute.is_active.is_(True)).order_by(GatewayRoute.id)
    )
    return _Rows(
        own,
        [_ProviderRow(*row) for row in providers.all() if row[0] in ProviderKind],
        [row for row in catalog.all() if row.provider_kind in ProviderKind],
        routes.all(),
        await list_visible(session, user),
    )


class _Builder:
    """The entries of one list, from the rows read for the caller."""

    def __init__(
        self,
        rows: _Rows,
        system_keys: Mapping[ProviderKind, Sequence[str]],
        default_prices: Mapping[str, tuple[Decimal, Decimal]],
    ) -> None:
        self.rows = rows
        self.providers = rows.providers
        self.usable = kinds_with_credentials(
            own=rows.own_kinds,
            providers=[(p.kind, bool(p.has_key)) for p in self.providers],
            system_keys=system_keys,
        )
        self.catalog = {(row.provider_kind, row.model_id): row for row in rows.catalog}
        prices = {
            pair: (row.input_price_per_million, row.output_price_per_million)
            for pair, row in self.catalog.items()
        }
        self.pricing = Pricing(lambda kind, model: prices.get((kind, model)), default_prices)
        pairs = [(row.provider_kind, row.model_id) for row in rows.catalog]
        for provider in self.providers:
            pairs += [
                (provider.kind, model)
                for model in (provider.fine_tuned_model_id, provider.base_model)
                if model
            ]
        self.names = GatewayNames((route.name for route in rows.routes), pairs)

    def _price(self, kind: ProviderKind, model: str) -> tuple[Decimal | None, Decimal | None]:
        price = self.pricing.of(kind.value, model)
        return (price.input_per_million, price.output_per_million) if price else (None, None)

    def catalog_models(self) -> list[ListedModel]:
        rows = sorted(self.rows.catalog, key=lambda row: (row.provider_kind, row.id))
        return [self._catalog_model(row) for row in rows]

    def _catalog_model(self, row: LlmModel) -> ListedModel:
        kind = ProviderKind(row.provider_kind)
        info = kind_info(kind)
        name, aliases = self.names.listed(kind, row.model_id)
        input_price, output_price = self._price(kind, row.model_id)
        return ListedModel(
            name=name,
            model_id=row.model_id,
            display_name=row.display_name,
            source="catalog",
            task=row.task,
            kind=kind,
            provider_label=info.label,
            owned_by=kind.value,
            created=row.created_at,
            input_price_per_million=input_price,
            output_price_per_million=output_price,
            context_length=row.context_length,
            description=row.description,
            usable=kind in self.usable,
            user_keys=info.user_keys,
            aliases=aliases,
            vision=row.task == "chat" and takes_images(row.model_id, kind=kind),
        )

    def provider_models(self) -> list[ListedModel]:
        models = []
        for provider in self.providers:
            kind = ProviderKind(provider.kind)
            if kind not in self.usable:
                continue
            for model, what in (
                (provider.base_model, "Base model"),
                (provider.fine_tuned_model_id, "Fine-tuned model"),
            ):
                if not model or (kind.value, model) in self.catalog:
                    continue
                name, aliases = self.names.listed(kind, model)
                input_price, output_price = self._price(kind, model)
                info = kind_info(kind)
                models.append(
                    ListedModel(
                        name=name,
                        model_id=model,
                        display_name=model,
                        source="provider",
                        task="chat",
                        kind=kind,
                        provider_label=info.label,
                        owned_by=kind.value,
                        created=provider.created_at,
                        input_price_per_million=input_price,
                        output_price_per_million=output_price,
                        context_length=None,
                        description=f"{what} of an administrator's {info.label} provider.",
                        user_keys=info.user_keys,
                        aliases=aliases,
                        vision=takes_images(model, kind=kind),
                    )
                )
        return models

    def route_models(self) -> list[ListedModel]:
        return [
            model for model in (self._route_model(route) for route in self.rows.routes) if model
        ]

    def _route_model(self, route: GatewayRoute) -> ListedModel | None:
        reachable = [
            (ProviderKind(target["provider"]), str(target["model"]))
            for target in route.targets
            if target.get("provider") in ProviderKind
            and ProviderKind(target["provider"]) in self.usable
        ]
        if not reachable:
            return None
        rows = [self.catalog.get((kind.value, model)) for kind, model in reachable]
        tasks = {row.task if row else "chat" for row in rows}
        lengths = [row.context_length if row else None for row in rows]
        prices = {self._price(kind, model) for kind, model in reachable}
        input_price, output_price = prices.pop() if len(prices) == 1 else (None, None)
        tried = ", ".join(f"{kind.value}/{model}" for kind, model in reachable)
        task = tasks.pop() if len(tasks) == 1 else "chat"
        return ListedModel(
            name=route.name,
            model_id=route.name,
            display_name=route.name,
            source="route",
            task=task,
            kind=None,
            provider_label="Route",
            owned_by=SERVICE_OWNER,
            created=route.created_at,
            input_price_per_million=input_price,
            output_price_per_million=output_price,
            context_length=None if None in lengths else min(_known(lengths)),
            description=route.description or f"A route: tries {tried}, in this order.",
            vision=task == "chat" and route_takes_images(route.targets),
        )

    def trained_models(self) -> list[ListedModel]:
        label = kind_info(ProviderKind.LOCAL).label
        return [
            ListedModel(
                name=f"local/{model.name}",
                model_id=model.name,
                display_name=model.name,
                source="trained",
                task=model.task,
                kind=ProviderKind.LOCAL,
                provider_label=label,
                owned_by=ProviderKind.LOCAL.value,
                created=model.created_at,
                input_price_per_million=Decimal(0),
                output_price_per_million=Decimal(0),
                context_length=None,
                description=(
                    f"Fine-tuned by modelyard from {model.base_model} (job {model.job_id})."
                ),
            )
            for model in self.rows.trained
        ]

    def _local_aliases(self, model: BuiltInModel) -> tuple[str, ...]:
        """``local/<alias>``, and each bare name the gateway resolves to local."""
        names = (model.name, *model.aliases)
        bare = [alias for name in names for alias in self.names.listed(ProviderKind.LOCAL, name)[1]]
        return (*(f"local/{alias}" for alias in model.aliases), *bare)

    def built_in_models(self) -> list[ListedModel]:
        label = kind_info(ProviderKind.LOCAL).label
        models = []
        for model in built_in_models():
            listed = next(
                (
                    self.catalog[("local", name)]
                    for name in (model.name, *model.aliases)
                    if ("local", name) in self.catalog
                ),
                None,
            )
            models.append(
                ListedModel(
                    name=f"local/{model.name}",
                    model_id=model.name,
                    display_name=listed.display_name if listed else model.name,
                    source="local",
                    task=model.task,
                    kind=ProviderKind.LOCAL,
                    provider_label=label,
                    owned_by=ProviderKind.LOCAL.value,
                    created=model.created,
                    input_price_per_million=Decimal(0),
                    output_price_per_million=Decimal(0),
                    context_length=model.context_length,
                    description=(listed.description if listed else None)
                    or "Built into modelyard: runs on this server, no key needed.",
                    aliases=self._local_aliases(model),
                )
            )
        return models


def _known(values: Iterable[int | None]) -> list[int]:
    return [value for value in values if value is not None]


def _deduplicated(models: Iterable[ListedModel]) -> list[ListedModel]:
    """One entry per name, the gateway's meaning winning; then in the list's order."""
    chosen: dict[str, ListedModel] = {}
    for model in sorted(models, key=lambda m: _PRECEDENCE.index(m.source)):
        chosen.setdefault(model.name, model)
    return sorted(chosen.values(), key=lambda m: _ORDER.index(m.source))


async def load_model_list(
    session: AsyncSession,
    *,
    user: User | None,
    system_keys: Mapping[ProviderKind, Sequence[str]],
    default_prices: Mapping[str, tuple[Decimal, Decimal]] | None = None,
) -> ModelList:
    """The models ``user`` may use, and the catalog models locked for them."""
    builder = _Builder(await _read(session, user), system_keys, default_prices or {})
    catalog = builder.catalog_models()
    models = _deduplicated(
        [
            *builder.route_models(),
            *builder.built_in_models(),
            *builder.trained_models(),
            *(model for model in catalog if model.usable),
            *builder.provider_models(),
        ]
    )
    listed = {model.name for model in models}
    locked = [model for model in catalog if not model.usable and model.name not in listed]
    return ModelList(usable=models, locked=locked)
