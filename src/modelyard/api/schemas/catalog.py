"""The model catalog as the API shows it."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

__all__ = ["LlmModelPublic"]


class LlmModelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    provider_kind: str
    provider_label: str
    model_id: str
    display_name: str
    task: str
    input_price_per_million: Decimal = Field(description="USD per million input tokens")
    output_price_per_million: Decimal = Field(description="USD per million output tokens")
    context_length: int | None
    description: str | None
    #: Whether the caller has a key for this model's provider.
    usable: bool

    @field_serializer("input_price_per_million", "output_price_per_million")
    def _as_number(self, value: Decimal) -> float:
        return float(value)
