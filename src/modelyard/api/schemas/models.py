"""OpenAI's ``Model`` and ``ListModelsResponse``, with modelyard's extension fields.

The four fields of OpenAI's shape (``id``, ``object``, ``created``, ``owned_by``) come
first; the others tell a client what the name is without another call: ``name`` (for
display; Open WebUI shows it), ``kind`` (``chat``, ``embedding``, ``classification``…),
``context_length`` (tokens, ``null`` when unknown), ``pricing`` (USD per million tokens as
decimal strings, ``null`` when unknown), ``source`` (``route``, ``catalog``,
``provider``, ``trained`` or ``local``) and ``vision`` (whether it takes images, by the
rule of :mod:`modelyard.model_list.vision`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from modelyard.model_list import ListedModel, Source

__all__ = ["ModelListObject", "ModelObject", "ModelPricing"]


def _usd(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


class ModelPricing(BaseModel):
    input_per_million: str = Field(description="USD per million input tokens", examples=["2.5"])
    output_per_million: str = Field(description="USD per million output tokens", examples=["10"])


class ModelObject(BaseModel):
    id: str = Field(description="The name to send as `model`.")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time when the name was added here.")
    owned_by: str = Field(description="The provider kind; `modelyard` for a route.")
    name: str = Field(description="A name for display.")
    kind: str = Field(description="What it does: `chat`, `embedding`, `classification`…")
    context_length: int | None = Field(description="The context window in tokens, if known.")
    pricing: ModelPricing | None = Field(description="What it costs, if known.")
    source: Source = Field(description="Where the name comes from.")
    vision: bool = Field(
        default=False, description="Whether it takes images (image parts in messages)."
    )

    @classmethod
    def of(cls, model: ListedModel) -> ModelObject:
        pricing = None
        if model.input_price_per_million is not None and model.output_price_per_million is not None:
            pricing = ModelPricing(
                input_per_million=_usd(model.input_price_per_million),
                output_per_million=_usd(model.output_price_per_million),
            )
        return cls(
            id=model.name,
            created=int(model.created.timestamp()),
            owned_by=model.owned_by,
            name=model.display_name,
            kind=model.task,
            context_length=model.context_length,
            pricing=pricing,
            source=model.source,
            vision=model.vision,
        )


class ModelListObject(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
