"""Conversations and their messages as the API shows them (costs in USD, as numbers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_serializer, model_validator

from modelyard.conversations.settings import MAX_PROMPT_CHARS

__all__ = [
    "ConversationDetail",
    "ConversationPage",
    "ConversationPublic",
    "ConversationUpdate",
    "MessagePage",
    "MessagePublic",
]


class ConversationUpdate(BaseModel):
    """What a ``PATCH`` changes: any of the title, pinned and archived (one at least)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    #: Pinned conversations head the sidebar.
    pinned: StrictBool | None = None
    #: Archived conversations leave the sidebar for the Archived list.
    archived: StrictBool | None = None
    #: The conversation's system prompt (empty or null: the user's custom instructions).
    system_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    #: Sampling temperature of its turns (null: the model's default).
    temperature: float | None = Field(default=None, ge=0, le=2)
    #: The longest answer of its turns, in tokens (null: the model's default).
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _something(self) -> ConversationUpdate:
        placed = any(getattr(self, name) is not None for name in ("title", "pinned", "archived"))
        if not placed and not self.settings():
            raise ValueError(
                "give a title, pinned, archived, system_prompt, temperature or max_tokens"
            )
        return self

    def settings(self) -> dict[str, Any]:
        """The settings given (``null`` among them: cleared)."""
        return {name: getattr(self, name) for name in SETTINGS if name in self.model_fields_set}


#: The fields of :class:`ConversationUpdate` that are the conversation's chat settings.
SETTINGS = ("system_prompt", "temperature", "max_tokens")


class ConversationPublic(BaseModel):
    """A conversation in the list."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    #: The model of the last answer.
    model: str | None
    created_at: datetime
    updated_at: datetime
    pinned: bool = False
    #: When it was archived; ``None``: in the sidebar.
    archived_at: datetime | None = None
    #: The id of its read-only link ``/share/{share_id}``; ``None``: not shared.
    share_id: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


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
