"""From a requested model name to the ordered list of targets to try.

A name is ``kind/model`` (``anthropic/claude-sonnet-4-5``), a model of the catalog
(``gpt-4o``), or an admin provider's base or fine-tuned model. Each provider kind has one
or more endpoints (its spec's, see :mod:`modelyard.providers.kinds`; Hugging Face: the
router, then direct inference), and each endpoint is tried with every credential in
priority order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.engine import Database
from modelyard.db.models import GatewayRoute, LlmModel, Provider
from modelyard.errors import NotFoundError
from modelyard.gateway.adapters.base import Target
from modelyard.providers.credentials import Credential
from modelyard.providers.kinds import ProviderKind, kind_info

__all__ = ["ModelIndex", "Resolution", "Step", "build_targets"]

#: How long the model index is trusted before it is read again from the database.
INDEX_TTL_SECONDS = 5.0


@dataclass(frozen=True)
class Step:
    """One (provider, model) of a resolution, optionally pinned to one endpoint."""

    kind: ProviderKind
    upstream_model: str
    endpoint: str | None = None


@dataclass(frozen=True)
class Resolution:
    """What a requested name means: a route's steps, or one model of one provider."""

    name: str
    steps: tuple[Step, ...]
    route: str | None = None
    cache_ttl_seconds: int | None = None
    #: Cached answers are shared across users (those paid by admin or system keys).
    cache_shared: bool = False
    #: A parameter a target cannot honour: ``error`` (a 400) or ``drop`` (left out);
    #: see :mod:`~modelyard.gateway.parameter_policy`.
    unsupported_params: str = "error"


class ModelIndex:
    """Names → resolutions, from routes, the catalog and admin providers (cached briefly).

    Route names come first (an alias may shadow a model name on purpose), then
    ``kind/model``, then catalog and provider models.
    """

    def __init__(self) -> None:
        self._kinds: dict[str, list[ProviderKind]] = {}
        self._routes: dict[str, Resolution] = {}
        self._prices: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self._loaded_at = float("-inf")
        #: The refresh running now, shared by every request that finds the index stale.
        self._loading: asyncio.Future[None] | None = None
        self._generation = 0
        #: Changes whenever what the index says may have changed (a refresh, an invalidation).
        self.revision = 0

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")
        self._loading = None
        self._generation += 1
        self.revision += 1

    async def _fresh(self, database: Database) -> None:
        """Refresh the index once for all the requests that find it stale together (a
        request cancelled meanwhile does not cancel the refresh)."""
        loading = self._loading
        if loading is None or loading.done():
            loading = self._loading = asyncio.ensure_future(self._load(database))
        await asyncio.shield(loading)

    async def _load(self, database: Database) -> None:
        generation = self._generation
        async with database.sessions() as session:
            await self._refresh(session)
        if generation != self._generation:  # invalidated while it read: read again next time
            self._loaded_at = float("-inf")

    async def _refresh(self, session: AsyncSession) -> None:
        kinds: dict[str, list[ProviderKind]] = {}
        catalog = await session.execute(
            select(
                LlmModel.model_id,
                LlmModel.provider_kind,
                LlmModel.input_price_per_million,
                LlmModel.output_price_per_million,
            )
            .where(LlmModel.is_active.is_(True))
            .order_by(LlmModel.id)
        )
        catalog_rows = catalog.all()
        self._prices = {(row[1], row[0]): (row[2], row[3]) for row in catalog_rows}
        providers = await session.execute(
            select(Provider.fine_tuned_model_id, Provider.base_model, Provider.kind)
            .where(Provider.is_active.is_(True))
            .order_by(Provider.is_default.desc(), Provider.id)
        )
        rows: list[tuple[str | None, str]] = [(row[0], row[1]) for row in catalog_rows]
        for fine_tuned, base, kind in providers.all():
            rows += [(fine_tuned, kind), (base, kind)]
        for name, kind in rows:
            if name and ProviderKind(kind) not in kinds.setdefault(name, []):
                kinds[name].append(ProviderKind(kind))
        routes = await session.execute(select(GatewayRoute).where(GatewayRoute.is_active.is_(True)))
        self._routes = {
            route.name: Resolution(
                route.name,
                tuple(
                    Step(ProviderKind(t["provider"]), t["model"], t.get("endpoint"))
                    for t in route.targets
                ),
                route=route.name,
                cache_ttl_seconds=route.cache_ttl_seconds,
                cache_shared=route.cache_shared,
                unsupported_params=route.unsupported_params or "error",
            )
            for route in routes.scalars()
        }
        self._kinds = kinds
        self._loaded_at = time.monotonic()
        self.revision += 1

    def price(self, kind: str, model: str) -> tuple[Decimal, Decimal] | None:
        """USD per million input and output tokens, when the catalog has the model."""
        return self._prices.get((kind, model))

    async def resolve(self, database: Database, name: str) -> Resolution:
        """What ``name`` means, or a 404 that says what to do."""
        if time.monotonic() - self._loaded_at > INDEX_TTL_SECONDS:
            await self._fresh(database)
        route = self._routes.get(name)
        if route is not None:
            return route
        prefix, _, rest = name.partition("/")
        if rest and prefix in ProviderKind:
            return Resolution(name, (Step(ProviderKind(prefix), rest),))
        kinds = self._kinds.get(name)
        if not kinds:
            raise NotFoundError(
                f"The model `{name}` does not exist or you do not have access to it. "
                "GET /v1/models lists the models you can use; `provider/model` names any "
                "model of a provider (e.g. openai/gpt-4o).",
                param="model",
                code="model_not_found",
            )
        return Resolution(name, (Step(kinds[0], name),))


def build_targets(
    resolution: Resolution,
    credentials: Mapping[ProviderKind, Sequence[Credential]],
    *,
    base_urls: Mapping[str, str],
    timeout: float,
) -> list[Target]:
    """Every target of ``resolution``: steps outermost, then endpoints, then keys."""
    targets = []
    for step in resolution.steps:
        for endpoint in kind_info(step.kind).endpoints:
            if step.endpoint is not None and endpoint.name != step.endpoint:
                continue
            for credential in credentials.get(step.kind, ()):
                base_url = (
                    base_urls.get(endpoint.base_url_setting)
                    if endpoint.base_url_setting
                    else credential.base_url
                )
                if base_url is None and endpoint.api != "local":
                    continue
                targets.append(
                    Target(
                        endpoint.api,
                        (base_url or "").rstrip("/"),
                        step.upstream_model,
                        credential,
                        timeout,
                    )
                )
    return targets
