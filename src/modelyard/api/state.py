"""What one running application holds: settings, database, keys and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry

from modelyard.accounts.access_changes import forget_cached_tokens, watch_access_changes
from modelyard.accounts.login_throttle import LoginThrottle
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import ApiToken
from modelyard.gateway.service import Gateway
from modelyard.limits.enforcer import LimitEnforcer
from modelyard.providers.kinds import ProviderKind
from modelyard.security.encryption import Keyring
from modelyard.ttl_cache import TTLCache
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
    #: For calls to providers made by the service itself (connection tests, …).
    http: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)

    def __post_init__(self) -> None:
        watch_access_changes(self.database.engine, forget_cached_tokens(self.token_cache))

    async def aclose(self) -> None:
        """Release connections: HTTP clients and the database pool."""
        await self.http.aclose()
        await self.usage.aclose()
        await self.gateway.aclose()
        await self.database.dispose()
