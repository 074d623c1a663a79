"""The gateway's entry points: resolve the name, build targets, dispatch, report."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import User
from modelyard.gateway.adapters.base import Target
from modelyard.gateway.adapters.local import LocalAdapter
from modelyard.gateway.adapters.registry import AdapterRegistry
from modelyard.gateway.cooldown import (
    CooldownPolicy,
    CooldownStore,
    MemoryCooldowns,
    RedisCooldowns,
)
from modelyard.gateway.dispatch import Dispatcher, Outcome
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.metrics import GatewayMetrics
from modelyard.gateway.response_cache import (
    MemoryResponseCache,
    RedisResponseCache,
    ResponseCache,
    cache_key,
)
from modelyard.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from modelyard.gateway.targets import ModelIndex, Resolution, build_targets
from modelyard.local.access import LocalCaller, resolve_local
from modelyard.local.errors import ModelNotFoundError
from modelyard.local.manager import ModelManager
from modelyard.local.sources import LocalRef
from modelyard.local.types import Classification
from modelyard.providers.credentials import (
    Credential,
    MissingCredentialsError,
    resolve_credentials,
)
from modelyard.providers.kinds import ProviderKind, kind_info
from modelyard.ttl_cache import TTLCache

__all__ = ["SHARED_CREDENTIALS", "Gateway", "Served"]

#: Credentials whose cached answers a route may share across users (nobody's own key).
SHARED_CREDENTIALS = frozenset({"admin", "system", "keyless"})


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
    #: Parameters left out because the route's policy is ``drop`` and the target could
    #: not honour them.
    dropped_params: tuple[str, ...] = ()

    def headers(self) -> dict[str, str]:
        headers = {
            "x-modelyard-provider": self.provider,
            "x-modelyard-model": self.model,
            "x-modelyard-attempts": str(self.attempts),
            "x-modelyard-cache": self.cache,
        }
        if self.resolution.route:
            headers["x-modelyard-route"] = self.resolution.route
        if self.dropped_params:
            headers["x-modelyard-dropped-params"] = ",".join(self.dropped_params)
        return headers


def _label(resolution: Resolution) -> str:
    if resolution.route:
        return f"Route {resolution.route}"
    return kind_info(resolution.steps[0].kind).label


class Gateway:
    """One per application: the model index and the adapters, on the HTTP session and the
    Redis client (optional) it is given."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        system_keys: dict[ProviderKind, list[str]],
        *,
        metrics: GatewayMetrics,
        http: UpstreamHttp,
        redis: Redis | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.system_keys = system_keys
        self.metrics = metrics
        #: The upstream HTTP session and the Redis client: the application's, not closed here.
        self.http = http
        self.redis = redis
        self.adapters = AdapterRegistry(self.http)
        #: Local models, loaded on demand and shared by every request of this app.
        self.local_models = ModelManager.from_settings(settings)
        local = self.adapters.get(LocalAdapter.api) if LocalAdapter.api in self.adapters else None
        if isinstance(local, LocalAdapter):
            local.manager = self.local_models
        policy = CooldownPolicy(
            failure_threshold=settings.cooldown_failures,
            base_cooldown=settings.cooldown_seconds,
            max_cooldown=settings.cooldown_max_seconds,
        )
        self.cooldowns: CooldownStore = (
            RedisCooldowns(self.redis, settings.redis_prefix, policy)
            if self.redis is not None
            else MemoryCooldowns(policy)
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
        """Unload the local models (the HTTP session and Redis are the caller's to close)."""
        await self.local_models.aclose()

    def invalidate(self) -> None:
        """Forget cached credentials and models (after keys or providers changed here)."""
        self.credentials.clear()
        self.index.invalidate()

    async def _credentials(self, user: User | None, kind: ProviderKind) -> list[Credential]:
        async def load() -> list[Credential]:
            async with self.database.sessions() as session:
                found = await resolve_credentials(
                    session,
                    user=user,
                    kind=kind,
                    system_keys=self.system_keys,
                    base_urls=self.settings.provider_base_urls,
                )
                if kind is ProviderKind.LOCAL:
                    found = await self._with_hf_token(session, user, found)
            return found

        loaded = await self.credentials.get_or_load((user.id if user else None, kind), load)
        assert loaded is not None  # load() returns a list or raises
        return loaded

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
        found = next(
            (c for source in ("user", "system") for c in known if c.source == source), None
        )
        if found is None:
            return credentials
        # A user's own token keeps its owner: its breaker is that user's alone.
        return [
            c if c.api_key else replace(c, api_key=found.api_key, owner_id=found.owner_id)
            for c in credentials
        ]

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
        if any(target.api == LocalAdapter.api for target in targets):
            targets = await self._resolve_local(user, resolution, targets)
        return resolution, targets

    async def _resolve_local(
        self, user: User | None, resolution: Resolution, targets: list[Target]
    ) -> list[Target]:
        """Local targets get the model their name means for the caller (a route's with the
        admin's authority: the route is their offer)."""
        caller = LocalCaller.of(None if resolution.route else user)
        names = {target.model for target in targets if target.api == LocalAdapter.api}
        refs: dict[str, LocalRef] = {}
        refused: ModelNotFoundError | None = None
        async with self.database.sessions() as session:
            for name in names:
                try:
                    refs[name] = await resolve_local(session, name, caller, self.settings)
                except ModelNotFoundError as error:  # a route goes on with its other targets
                    refused = error
        resolved = [
            replace(target, local=refs[target.model]) if target.api == LocalAdapter.api else target
            for target in targets
            if target.api != LocalAdapter.api or target.model in refs
        ]
        if not resolved and refused is not None:
            raise refused
        return resolved

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
            outcome.dropped_params,
        )

    async def chat(
        self,
        user: User | None,
        request: ChatCompletionRequest,
        *,
        cache_ttl: int | None = None,
    ) -> tuple[dict[str, Any], Served]:
        """Answer ``request``; cached for the route's TTL, or ``cache_ttl`` when given
        (0 turns caching off for this request).

        Cached answers are the user's own; a route with ``cache_shared`` also shares those
        paid by an admin or system key with every user (never one paid by a user's key).
        """
        resolution, targets = await self._targets(user, request.model)

        def dispatch() -> Awaitable[Outcome[dict[str, Any]]]:
            return self.dispatcher.chat(
                request,
                targets,
                _label(resolution),
                unsupported_params=resolution.unsupported_params,
            )

        return await self._cached(
            user, resolution, "chat.completions", request, cache_ttl=cache_ttl, dispatch=dispatch
        )

    async def _cached(
        self,
        user: User | None,
        resolution: Resolution,
        operation: str,
        request: ChatCompletionRequest | CompletionRequest,
        *,
        cache_ttl: int | None,
        dispatch: Callable[[], Awaitable[Outcome[dict[str, Any]]]],
    ) -> tuple[dict[str, Any], Served]:
        """``dispatch()``'s answer to ``request``, from the payer-scoped cache when it holds
        one (see :meth:`chat`); ``operation`` keeps each API's answers apart. The request
        is serialised for its key only when caching is on."""
        ttl = resolution.cache_ttl_seconds if cache_ttl is None else cache_ttl
        if not ttl:
            outcome = await dispatch()
            return outcome.result, self._served(resolution, outcome)
        body = request.model_dump(exclude_none=True, exclude={"conversation_id"})
        native = request.anthropic_native if isinstance(request, ChatCompletionRequest) else None
        if native is not None:  # its native parts shape the answer too
            body["anthropic_native"] = native.model_dump()
        responses = request.responses_native if isinstance(request, ChatCompletionRequest) else None
        if responses is not None:  # an OpenAI target answers it natively
            body["responses_native"] = responses.body
        own = cache_key(body, namespace=f"{operation}/user:{user.id if user else 0}")
        shared = (
            cache_key(body, namespace=f"{operation}/shared")
            if resolution.route and resolution.cache_shared
            else None
        )
        for key in (shared, own):
            hit = await self.cache.get(key) if key else None
            if hit is not None:
                self.metrics.cache.labels("hit").inc()
                served = Served(
                    resolution,
                    hit["provider"],
                    hit["model"],
                    0,
                    0.0,
                    "hit",
                    tuple(hit.get("dropped_params") or ()),
                )
                return hit["response"], served
        self.metrics.cache.labels("miss").inc()
        outcome = await dispatch()
        served = self._served(resolution, outcome, "miss")
        paid_by_all = outcome.target.credential.source in SHARED_CREDENTIALS
        entry = {
            "response": outcome.result,
            "provider": served.provider,
            "model": served.model,
            "dropped_params": list(served.dropped_params),
        }
        await self.cache.put(shared if shared and paid_by_all else own, entry, ttl)
        return outcome.result, served

    def account(
        self,
        served: Served,
        usage: Mapping[str, Any] | None,
        status: str,
        *,
        cost_usd: Decimal = Decimal(0),
    ) -> None:
        """Count the request, its tokens and its cost (priced by the caller's metering)."""
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
        self.metrics.cost.labels(served.provider, served.model).inc(float(cost_usd))

    async def stream(
        self, user: User | None, request: ChatCompletionRequest
    ) -> tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]], Served]:
        resolution, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.open_stream(
            request, targets, _label(resolution), unsupported_params=resolution.unsupported_params
        )
        first, rest = outcome.result
        return first, rest, self._served(resolution, outcome)

    async def complete_text(
        self,
        user: User | None,
        request: CompletionRequest,
        *,
        cache_ttl: int | None = None,
    ) -> tuple[dict[str, Any], Served]:
        """Answer a legacy text completion, cached as :meth:`chat` caches."""
        resolution, targets = await self._targets(user, request.model)

        def dispatch() -> Awaitable[Outcome[dict[str, Any]]]:
            return self.dispatcher.complete_text(
                request,
                targets,
                _label(resolution),
                unsupported_params=resolution.unsupported_params,
            )

        return await self._cached(
            user, resolution, "completions", request, cache_ttl=cache_ttl, dispatch=dispatch
        )

    async def stream_text(
        self, user: User | None, request: CompletionRequest
    ) -> tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]], Served]:
        """Start streaming a legacy text completion: its first event, the rest, who serves."""
        resolution, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.open_text_stream(
            request, targets, _label(resolution), unsupported_params=resolution.unsupported_params
        )
        first, rest = outcome.result
        return first, rest, self._served(resolution, outcome)

    async def classify(self, user: User, name: str, texts: list[str]) -> list[Classification]:
        """Labels for ``texts`` from the local classifier ``name`` as ``user`` may use it."""
        async with self.database.sessions() as session:
            ref = await resolve_local(session, name, LocalCaller.of(user), self.settings)
        try:
            credentials = await self._credentials(user, ProviderKind.LOCAL)
        except MissingCredentialsError:
            credentials = []
        token = next((c.api_key for c in credentials if c.api_key), None)
        return await self.local_models.classify(ref, texts, token=token)

    async def count_tokens(
        self, user: User | None, request: ChatCompletionRequest
    ) -> tuple[int | None, Served | None]:
        """``request``'s input tokens as its first target's provider counts them, and who
        counted; ``(None, None)`` when that provider cannot count (the caller estimates).
        Counting generates nothing: no usage is recorded for it."""
        resolution, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.count_tokens(request, targets, _label(resolution))
        if outcome is None or outcome.result is None:
            return None, None
        return outcome.result, self._served(resolution, outcome)

    async def embed(
        self, user: User | None, request: EmbeddingRequest
    ) -> tuple[dict[str, Any], Served]:
        resolution, targets = await self._targets(user, request.model)
        outcome = await self.dispatcher.embed(request, targets, _label(resolution))
        return outcome.result, self._served(resolution, outcome)
