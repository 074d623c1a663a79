"""What one running application holds: settings, database, keys, connections and metrics.

The application owns its connections: the upstream HTTP session and the Redis client are
made here (or given) and handed to the gateway and the limits, and closed by :meth:`aclose`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from modelyard.accounts.access_changes import forget_cached_tokens, watch_access_changes
from modelyard.accounts.login_throttle import LoginThrottle
from modelyard.api.metrics_exposition import MetricsExposition
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import ApiToken
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.service import Gateway
from modelyard.limits.enforcer import LimitEnforcer
from modelyard.providers.kinds import ProviderKind
from modelyard.responses.store import ResponseStore
from modelyard.security.encryption import Keyring
from modelyard.ttl_cache import TTLCache
from modelyard.usage.metering import Metering
from modelyard.usage.recorder import UsageRecorder

__all__ = ["AppState"]


@dataclass
class AppState:
    settings: Settings
    database: Database
    keyring: Keyring
    gateway: Gateway
    usage: UsageRecorder
    limits: LimitEnforcer
    #: Provider keys from the environment and ``.env``, per kind, in priority order.
    system_keys: dict[ProviderKind, list[str]] = field(default_factory=dict)
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    #: Token digest → resolved token (with its user); see ``auth_cache_seconds``. Entries
    #: a commit in this process changes are dropped at once (``accounts.access_changes``).
    token_cache: TTLCache[str, ApiToken] = field(default_factory=lambda: TTLCache(ttl=0))
    #: Failed sign-ins per account and address (shared through Redis when configured).
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    #: The session for upstream calls (the gateway's, fine-tuning, the training advisor).
    upstream_http: UpstreamHttp = field(default_factory=UpstreamHttp)
    #: Shared state across processes (limits, cooldowns, cache); ``None``: in memory.
    redis: Redis | None = None
    #: Admits, calls and records gateway requests (see :mod:`modelyard.usage.metering`).
    metering: Metering = field(init=False)
    #: The Responses API's stored responses (group-committed saves).
    responses: ResponseStore = field(init=False)
    #: What ``/metrics`` serves (this process's registry, or every worker's).
    metrics: MetricsExposition = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = MetricsExposition(self.metrics_registry)
        watch_access_changes(self.database.engine, forget_cached_tokens(self.token_cache))
        self.metering = Metering(
            self.gateway, self.limits, self.usage, self.settings.default_prices
        )
        self.responses = ResponseStore(
            self.database, retention_days=self.settings.responses_retention_days
        )

    async def aclose(self) -> None:
        """Release connections: HTTP clients, Redis and the database pool."""
        await self.usage.aclose()
        await self.gateway.aclose()
        await self.upstream_http.aclose()
        await self.limits.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.dispose()
