"""The gateway's entry points: resolve the name, build targets, dispatch, report."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import User
from modelyard.gateway.adapters.base import Target
from modelyard.gateway.adapters.local import LocalAdapter
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
    cache_key,
)
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.targets import ModelIndex, Resolution, build_targets
from modelyard.local.manager import ModelManager
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
    """What answered a request, for the response headers, metrics and usage records."""

    resolution: Resolution
    provider: str
    model: str
    attempts: int
    #: Seconds spent waiting for upstreams (the rest of the time is the gateway's own).
    upstream_seconds: float
    #: ``hit``, ``miss`` or ``off`` (the request was not cacheable).
    cache: str = "off"

    def headers(self) -> dict[str, str]:
        headers = {
            "x-modelyard-provider": self.provider,
            "x-modelyard-model": self.model,
            "x-modelyard-attempts": str(self.attempts),
            "x-modelyard-cache": self.cache,
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
        #: Local models, loaded on demand and shared by every request of this app.
        self.local_models = ModelManager.from_settings(settings)
        local = self.adapters.get(LocalAdapter.api) if LocalAdapter.api in self.adapters else None
        if isinstance(local, LocalAdapter):
            local.manager = self.local_models
        self.redis: Redis | None = create_redis(settings.redis_url) if settings.redis_url else None
        self.cooldowns: CooldownStore = (
            RedisCooldowns(self.redis, settings.redis_prefix)
            if self.redis is not None
            else MemoryCooldowns()
        )
        self.cache: ResponseCache = (
            RedisResponseCache(self.redis, settings.redis_prefix)
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
        await self.local_models.aclose()
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
                    session,
                    user=user,
                    kind=kind,
                    system_keys=self.system_keys,
                    base_urls=self.settings.provider_base_urls,
                )
                if kind is ProviderKind.LOCAL:
                    cached = await self._with_hf_token(session, user, cached)
            self.credentials.put(key, cached)
        return cached

    async def _with_hf_token(
        self, session: AsyncSession, user: User | None, credentials: list[Credential]
    ) -> list[Credential]:
        """Local credentials carry a Hugging Face token for Hub downloads when one is known:
        the user's own Hugging Face key, else the system's (``HF_TOKEN``, …)."""
        try:
            known = await resolve_credentials(
                session,
                user=user,
                kind=ProviderKind.HUGGINGFACE,
                system_keys=self.system_keys,
                base_urls=self.settings.provider_base_urls,
            )
        except MissingCredentialsError:
            return credentials
        token = next(
            (c.api_key for source in ("user", "system") for c in known if c.source == source),
            None,
        )
        if token is None:
            return credentials
        return [c if c.api_key else replace(c, api_key=token) for c in credentials]

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
    def _served(resolution: Resolution, outcome: Outcome[Any], cache: str = "off") -> Served:
        called = sum(1 for attempt in outcome.attempts if attempt.called)
        target = outcome.target
        return Served(
            resolution,
            target.credential.kind.value,
            target.model,
            called,
            outcome.upstream_seconds,
            cache,
        )

    async def chat(
        self,
        user: User | None,
        request: ChatCompletionRequest,
        *,
        cache_ttl: int | None = None,
    ) -> tuple[dict[str, Any], Served]:
        """Answer ``request``; cached for the route's TTL, or ``cache_ttl`` when given
        (0 turns caching off for this request)."""
        resolution, targets = await self._targets(user, request.model)
        ttl = resolution.cache_ttl_seconds if cache_ttl is None else cache_ttl
        key = None
        if ttl:
            key = cache_key(request.model_dump(exclude_none=True, exclude={"conversation_id"}))
            hit = await self.cache.get(key)
            self.metrics.cache.labels("hit" if hit else "miss").inc()
            if hit is not None:
                served = Served(resolution, hit["provider"], hit["model"], 0, 0.0, "hit")
                return hit["response"], served
        outcome = await self.dispatcher.chat(request, targets, _label(resolution))
        served = self._served(resolution, outcome, "miss" if key else "off")
        if key is not None and ttl:
            entry = {"response": outcome.result, "provider": served.provider, "model": served.model}
            await self.cache.put(key, entry, ttl)
        return outcome.result, served

    def account(self, served: Served, usage: Mapping[str, Any] | None, status: str) -> None:
        """Count the request, its tokens and its cost (from the catalog's prices)."""
        route = served.resolution.route or ""
        self.metrics.requests.labels(route, served.provider, served.model, status).inc()
        if served.cache == "hit":
            return
        self.metrics.latency.labels(served.provider, served.model).observe(served.upstream_seconds)
        if not usage:
            return
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        self.metrics.tokens.labels(served.provider, served.model, "input").inc(prompt)
        self.metrics.tokens.labels(served.provider, served.model, "output").inc(completion)
        price = self.index.price(served.provider, served.model)
        if price is not None:
            cost = (prompt * price[0] + completion * price[1]) / 1_000_000
            self.metrics.cost.labels(served.provider, served.model).inc(float(cost))

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
