"""Budgets and rate limits, checked before the upstream call.

(Interim version: admits everything; the enforcing version replaces it.)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from modelyard.db.engine import Database
from modelyard.db.models import User

__all__ = ["Admission", "LimitEnforcer"]


@dataclass
class Admission:
    """A request let through, with what it reserved against the limits."""

    user_id: int
    api_token_id: int | None
    estimated_tokens: int


class LimitEnforcer:
    def __init__(
        self, database: Database, *, redis: object | None = None, prefix: str = ""
    ) -> None:
        self.database = database

    async def admit(
        self, *, user: User, api_token_id: int | None, estimated_tokens: int
    ) -> Admission:
        """Let the request through, or raise a 429 / 402 naming the limit and its reset."""
        return Admission(user.id, api_token_id, estimated_tokens)

    async def settle(self, admission: Admission, *, tokens: int, cost_usd: Decimal) -> None:
        """Replace the reservation by what the request really used."""
