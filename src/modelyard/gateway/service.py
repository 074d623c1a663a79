"""The gateway's entry points: resolve the model, build targets, dispatch, report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import User
from modelyard.gateway.adapters.base import Target
from modelyard.gateway.adapters.registry import AdapterRegistry
from modelyard.gateway.dispatch import Dispatcher, Outcome
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.targets import ModelIndex, ResolvedModel, build_targets
from modelyard.providers.credentials import Credential, resolve_credentials
from modelyard.providers.kinds import ProviderKind, kind_info
from modelyard.ttl_cache import TTLCache

__all__ = ["Gateway", "Served"]


@dataclass
class Served:
    """What answered a request, for the response headers and usage records."""

    model: ResolvedModel
    upstream_model: str
    attempts: int

    def headers(self) -> dict[str, str]:
        return {
            "x-modelyard-provider": self.model.kind.value,
            "x-modelyard-model": self.upstream_model,
            "x-modelyard-attempts": str(self.attempts),
        }


class Gateway:
    """One per application: the model index, the adapters and their HTTP client."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        system_keys: dict[ProviderKind, list[str]],
        *,
        http: UpstreamHttp | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.system_keys = system_keys
        self.http = http or UpstreamHttp()
        self.adapters = AdapterRegistry(self.http)
        self.dispatcher = Dispatcher(self.adapters)
        self.index = ModelIndex()
        #: (user id, kind) → credentials in priority order; see ``credentials_cache_seconds``.
        self.credentials: TTLCache[tuple[int | None, ProviderKind], list[Credential]] = TTLCache(
            ttl=settings.credentials_cache_seconds
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def invalidate(self) -> None:
        """Forget cached credentials and models (after keys or providers changed here)."""
        self.credentials.clear()
        self.index.invalidate()

    async def _credentials(self, user: User | None, kind: ProviderKind) -> list[Credential]:
        key = (user.id if user else None, kind)
        cached = self.credentials.get(key)
        if cached is None:
            async with self.database.sessions() as session:
                cached = await resolve_credentials(
                    session, user=user, kind=kind, system_keys=self.system_keys
                )
            self.credentials.put(key, cached)
        return cached

    async def _targets(self, user: User | None, name: str) -> tuple[ResolvedModel, list[Target]]:
        """The model and its targets; the database is read only when a cache is stale."""
        model = await self.index.resolve(self.database, name)
        targets = build_targets(
            model,
            await self._credentials(user, model.kind),
            base_urls={"hf_inference_url": self.settings.hf_inference_url},
            timeout=self.settings.upstream_timeout,
        )
        return model, targets

    @staticmethod
    def _served(model: ResolvedModel, outcome: Outcome[Any]) -> Served:
        return Served(model, outcome.target.model, len(outcome.attempts))

    async def chat(
        self, user: User | None, request: ChatCompletionRequest
    ) -> tuple[dict[str, Any], Served]:
        model, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.chat(request, targets, kind_info(model.kind).label)
        return outcome.result, self._served(model, outcome)

    async def stream(
        self, user: User | None, request: ChatCompletionRequest
    ) -> tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]], Served]:
        model, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.open_stream(request, targets, kind_info(model.kind).label)
        first, rest = outcome.result
        return first, rest, self._served(model, outcome)

    async def embed(
        self, user: User | None, request: EmbeddingRequest
    ) -> tuple[dict[str, Any], Served]:
        model, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.embed(request, targets, kind_info(model.kind).label)
        return outcome.result, self._served(model, outcome)
