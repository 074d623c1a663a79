"""Catalog prices as tests spell them, and the cost they make."""

from __future__ import annotations

from decimal import Decimal

#: gpt-4o-mini's seeded price: USD per million input and output tokens.
GPT_4O_MINI = (Decimal("0.15"), Decimal("0.60"))


def cost(input_tokens: int, output_tokens: int, price: tuple[Decimal, Decimal]) -> Decimal:
    """What ``input_tokens`` in and ``output_tokens`` out cost at ``price`` (per million)."""
    return (input_tokens * price[0] + output_tokens * price[1]) / Decimal(1_000_000)
