"""The gateway's entry points: resolve the name, build targets, dispatch, report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import User
from modelyard.gateway.adapters.base import Target
from modelyard.gateway.adapters.registry import AdapterRegistry
from modelyard.gateway.cooldown import CooldownStore, MemoryCooldowns, RedisCooldowns
from modelyard.gateway.dispatch import Dispatcher, Outcome
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.metrics import GatewayMetrics
from modelyard.gateway.redis_client import create_redis
from modelyard.gateway.response_cache import (
    MemoryResponseCache,
    RedisResponseCache,
    ResponseCache,
)
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.targets import ModelIndex, Resolution, build_targets
from modelyard.providers.credentials import (
    Credential,
    MissingCredentialsError,
    resolve_credentials,
)
from modelyard.providers.kinds import ProviderKind, kind_info
from modelyard.ttl_cache import TTLCache

__all__ = ["Gateway", "Served"]


@dataclass
class Served:
    """What answered a request, for the response headers and usage records."""

    resolution: Resolution
    target: Target
    attempts: int
    #: Seconds spent waiting for upstreams (the rest of the time is the gateway's own).
    upstream_seconds: float

    @property
    def kind(self) -> ProviderKind:
        return self.target.credential.kind

    @property
    def upstream_model(self) -> str:
        return self.target.model

    def headers(self) -> dict[str, str]:
        headers = {
            "x-modelyard-provider": self.kind.value,
            "x-modelyard-model": self.target.model,
            "x-modelyard-attempts": str(self.attempts),
        }
        if self.resolution.route:
            headers["x-modelyard-route"] = self.resolution.route
        return headers


def _label(resolution: Resolution) -> str:
    if resolution.route:
        return f"Route {resolution.route}"
    return kind_info(resolution.steps[0].kind).label


class Gateway:
    """One per application: the model index, the adapters and their HTTP client."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        system_keys: dict[ProviderKind, list[str]],
        *,
        metrics: GatewayMetrics,
        http: UpstreamHttp | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.system_keys = system_keys
        self.metrics = metrics
        self.http = http or UpstreamHttp()
        self.adapters = AdapterRegistry(self.http)
        self.redis: Redis | None = create_redis(settings.redis_url) if settings.redis_url else None
        self.cooldowns: CooldownStore = (
            RedisCooldowns(self.redis) if self.redis is not None else MemoryCooldowns()
        )
        self.cache: ResponseCache = (
            RedisResponseCache(self.redis)
            if self.redis is not None
            else MemoryResponseCache(settings.response_cache_entries)
        )
        self.dispatcher = Dispatcher(
            self.adapters,
            cooldowns=self.cooldowns,
            metrics=metrics,
            deadline=settings.route_deadline_seconds,
        )
        self.index = ModelIndex()
        #: (user id, kind) → credentials in priority order; see ``credentials_cache_seconds``.
        self.credentials: TTLCache[tuple[int | None, ProviderKind], list[Credential]] = TTLCache(
            ttl=settings.credentials_cache_seconds
        )

    async def aclose(self) -> None:
        await self.http.aclose()
        if self.redis is not None:
            await self.redis.aclose()

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

    async def _targets(self, user: User | None, name: str) -> tuple[Resolution, list[Target]]:
        """The resolution and its targets; the database is read only when a cache is stale.

        In a route, a provider without any key is skipped; with no key for any of its
        providers, the first provider's missing-key error is raised.
        """
        resolution = await self.index.resolve(self.database, name)
        credentials: dict[ProviderKind, list[Credential]] = {}
        missing: MissingCredentialsError | None = None
        for kind in dict.fromkeys(step.kind for step in resolution.steps):
            try:
                credentials[kind] = await self._credentials(user, kind)
            except MissingCredentialsError as error:
                missing = missing or error
        if not credentials and missing is not None:
            raise missing
        targets = build_targets(
            resolution,
            credentials,
            base_urls={"hf_inference_url": self.settings.hf_inference_url},
            timeout=self.settings.upstream_timeout,
        )
        return resolution, targets

    @staticmethod
    def _served(resolution: Resolution, outcome: Outcome[Any]) -> Served:
        called = sum(1 for attempt in outcome.attempts if attempt.called)
        return Served(resolution, outcome.target, called, outcome.upstream_seconds)

    async def chat(
        self, user: User | None, request: ChatCompletionRequest
    ) -> tuple[dict[str, Any], Served]:
        resolution, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.chat(request, targets, _label(resolution))
        return outcome.result, self._served(resolution, outcome)

    async def stream(
        self, user: User | None, request: ChatCompletionRequest
    ) -> tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]], Served]:
        resolution, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.open_stream(request, targets, _label(resolution))
        first, rest = outcome.result
        return first, rest, self._served(resolution, outcome)

    async def embed(
        self, user: User | None, request: EmbeddingRequest
    ) -> tuple[dict[str, Any], Served]:
        resolution, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.embed(request, targets, _label(resolution))
        return outcome.result, self._served(resolution, outcome)
