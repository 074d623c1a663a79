"""What a model costs: the one place usage records, budgets and refusals ask.

A provider kind and model are priced, first match wins:

1. ``catalog``: the catalog row of that kind and model (admins set prices there);
2. ``family``: a dated snapshot takes the catalog price of its family
   (``gpt-4o-2024-08-06`` → ``gpt-4o``, ``claude-sonnet-4-5-20250929`` →
   ``claude-sonnet-4-5``): a trailing ``-YYYY-MM-DD`` or ``-YYYYMMDD`` is removed, except
   for the snapshots in :data:`PRICED_APART`, which their provider prices differently;
3. ``default``: the kind's default price, ``MODELYARD_DEFAULT_PRICES`` (JSON, USD per
   million input and output tokens, e.g. ``{"openai_compatible": [0.5, 1.5]}``);
4. ``local``: models served by this service cost nothing.

Anything else has no price (``None``): it is recorded at cost 0, and a caller with a USD
budget is refused it (:func:`unpriced_refusal`), since it could never be charged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from modelyard.errors import PaymentRequiredError
from modelyard.providers.kinds import ProviderKind

__all__ = [
    "PRICED_APART",
    "Price",
    "Pricing",
    "family_of",
    "unpriced_refusal",
]

#: Dated snapshots their provider prices unlike their family (no family fallback).
PRICED_APART = frozenset({("openai", "gpt-4o-2024-05-13")})

_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")

#: Kinds served by this service itself.
FREE_KINDS = frozenset({"local"})

#: A catalog look-up: (kind, model) → USD per million input and output tokens.
CatalogPrice = Callable[[str, str], tuple[Decimal, Decimal] | None]

Source = Literal["catalog", "family", "default", "local"]


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens, and where the price came from."""

    input_per_million: Decimal
    output_per_million: Decimal
    source: Source

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """What ``input_tokens`` and ``output_tokens`` cost, in USD."""
        total = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        return total / Decimal(1_000_000)


def family_of(model: str) -> str | None:
    """The family of a dated snapshot (``gpt-4o-2024-08-06`` → ``gpt-4o``), else ``None``."""
    family = _DATE_SUFFIX.sub("", model)
    return family if family != model and family else None


class Pricing:
    """Prices from the catalog (``catalog``, e.g. ``ModelIndex.price``) and the defaults."""

    def __init__(
        self,
        catalog: CatalogPrice,
        defaults: Mapping[str, tuple[Decimal, Decimal]]
        | Mapping[ProviderKind, tuple[Decimal, Decimal]]
        | None = None,
    ) -> None:
        self.catalog = catalog
        self.defaults = {str(kind): price for kind, price in (defaults or {}).items()}

    def of(self, kind: str, model: str) -> Price | None:
        """The price of ``model`` served by a provider of ``kind`` (see the module doc)."""
        found = self.catalog(kind, model)
        if found is not None:
            return Price(found[0], found[1], "catalog")
        family = family_of(model)
        if family is not None and (kind, model) not in PRICED_APART:
            found = self.catalog(kind, family)
            if found is not None:
                return Price(found[0], found[1], "family")
        default = self.defaults.get(kind)
        if default is not None:
            return Price(default[0], default[1], "default")
        if kind in FREE_KINDS:
            return Price(Decimal(0), Decimal(0), "local")
        return None

    def cost(self, kind: str, model: str, input_tokens: int, output_tokens: int) -> Decimal:
        """What the tokens cost on ``kind``/``model``; 0 when it has no price."""
        price = self.of(kind, model)
        return price.cost(input_tokens, output_tokens) if price is not None else Decimal(0)

    def unpriced(self, targets: Iterable[tuple[str, str]]) -> list[str]:
        """The ``kind/model`` names among ``targets`` that have no price, in order."""
        names = [f"{kind}/{model}" for kind, model in targets if self.of(kind, model) is None]
        return list(dict.fromkeys(names))


def unpriced_refusal(requested: str, unpriced: list[str]) -> PaymentRequiredError:
    """The 402 for a caller with a USD budget asking for a model without a price."""
    names = " and ".join(f"`{name}`" for name in unpriced)
    served = "" if unpriced == [requested] else f" (served by {names})"
    return PaymentRequiredError(
        f"The model `{requested}`{served} has no price, so what it costs cannot be counted "
        f"against your USD budget. Ask an admin to set a price for {names} in the model "
        "catalog (or a default price for its provider kind, MODELYARD_DEFAULT_PRICES), or "
        "choose a priced model (GET /v2/llm-models lists the prices).",
        param="model",
        code="model_not_priced",
    )
