"""What one running application holds: settings, database, keys and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.security.encryption import Keyring

__all__ = ["AppState"]


@dataclass
class AppState:
    settings: Settings
    database: Database
    keyring: Keyring
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
