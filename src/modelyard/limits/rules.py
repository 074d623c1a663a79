"""The limits of one subject (a user or an API token) as the enforcer uses them, and money
in the integer units the counters hold (1e-8 USD, the scale of ``usage_records.cost_usd``)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, cast

from modelyard.db.models import UsageLimit
from modelyard.limits.periods import PERIODS, Period

__all__ = [
    "USD_UNITS",
    "SubjectKind",
    "SubjectLimits",
    "format_usd",
    "from_units",
    "to_units",
]

SubjectKind = Literal["user", "token"]
#: Counter units per US dollar.
USD_UNITS = 10**8


def to_units(usd: Decimal) -> int:
    """``usd`` in counter units, rounded half up."""
    return int((usd * USD_UNITS).to_integral_value(rounding=ROUND_HALF_UP))


def from_units(units: int) -> Decimal:
    """Counter ``units`` back in US dollars."""
    return Decimal(units).scaleb(-8).normalize() if units else Decimal(0)


def format_usd(usd: Decimal) -> str:
    """``$5.00``, ``$0.000001``: two decimals at least, more when the amount has them."""
    usd = usd.normalize()
    exponent = usd.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"${usd:.{places}f}"


@dataclass(frozen=True)
class SubjectLimits:
    """One ``usage_limits`` row, detached from the database session."""

    kind: SubjectKind
    id: int
    budget_usd: Decimal | None
    period: Period
    requests_per_minute: int | None
    tokens_per_minute: int | None
    #: Changes whenever the row is replaced or edited: names the budget's spend counter,
    #: so a changed limit starts from the database's sum again.
    version: str

    @property
    def key(self) -> str:
        """The counters' name of the subject: ``u<id>`` or ``t<id>``."""
        return f"{'u' if self.kind == 'user' else 't'}{self.id}"

    @property
    def budget_units(self) -> int | None:
        return None if self.budget_usd is None else to_units(self.budget_usd)

    def owner(self) -> str:
        """Whose limit this is, for messages: "your account's" or "API token 7's"."""
        return "your account's" if self.kind == "user" else f"API token {self.id}'s"

    @classmethod
    def of(cls, row: UsageLimit) -> SubjectLimits:
        kind: SubjectKind = "user" if row.user_id is not None else "token"
        period: Period = "month"
        for known in PERIODS:
            if row.budget_period == known:
                period = known
        return cls(
            kind=kind,
            id=cast(int, row.user_id if kind == "user" else row.api_token_id),
            budget_usd=row.budget_usd,
            period=period,
            requests_per_minute=row.requests_per_minute,
            tokens_per_minute=row.tokens_per_minute,
            version=f"{row.id}.{round(row.updated_at.timestamp() * 1_000_000)}",
        )
