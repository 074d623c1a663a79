"""What one gateway request cost: the event queued for the usage table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from modelyard.db.types import utcnow
from modelyard.unique_ids import unique_hex

__all__ = ["UsageEvent"]


@dataclass
class UsageEvent:
    """One gateway request, success or failure (see :class:`~modelyard.db.models.UsageRecord`)."""

    endpoint: str
    model: str
    status: int
    user_id: int | None = None
    api_token_id: int | None = None
    request_id: str | None = None
    route: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    attempts: int = 0
    error_code: str | None = None
    cache_hit: bool = False
    estimated: bool = False
    conversation_id: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    #: Unique per event: the usage journal's replay after a crash inserts it only once.
    event_id: str = field(default_factory=unique_hex)
