"""Conversations and their messages as the API shows them (costs in USD, as numbers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

__all__ = [
    "ConversationDetail",
    "ConversationPage",
    "ConversationPublic",
    "ConversationUpdate",
    "MessagePage",
    "MessagePublic",
]


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)


class ConversationPublic(BaseModel):
    """A conversation in the list."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    #: The model of the last answer.
    model: str | None
    created_at: datetime
    updated_at: datetime


class ConversationDetail(ConversationPublic):
    """A conversation with what its messages add up to."""

    message_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Decimal

    @field_serializer("cost_usd")
    def _cost(self, value: Decimal) -> float:
        return float(value)


class MessagePublic(BaseModel):
    """One stored message: the user's carries the turn's input tokens, the answer the
    output tokens, the turn's cost and its latency."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    role: str
    content: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: int | None
    #: ``None``: complete; ``stopped``: the answer was cut by the client (Stop or a
    #: disconnect) and holds what had arrived.
    status: str | None = None
    created_at: datetime

    @field_serializer("cost_usd")
    def _cost(self, value: Decimal) -> float:
        return float(value)


class _Page(BaseModel):
    total: int
    limit: int
    offset: int
    #: The ``offset`` of the next page; ``None`` on the last one.
    next_offset: int | None


class ConversationPage(_Page):
    items: list[ConversationPublic]


class MessagePage(_Page):
    items: list[MessagePublic]
