"""A conversation's settings (system prompt, temperature, answer length) and a user's
custom instructions, applied to each chat turn on the server.

The system prompt of a turn is the conversation's own when it has one, else the user's
custom instructions (a default system prompt for every conversation); a request that
brings its own system or developer message keeps it and gets neither. Temperature and
the answer's length apply when the request sets none. The prompt is never stored as a
message: it is a setting, shown and changed as one, and it applies to later turns too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.conversations.service import get_conversation
from modelyard.db.models import Conversation, User
from modelyard.gateway.schemas import ChatCompletionRequest, ChatMessage

__all__ = [
    "MAX_PROMPT_CHARS",
    "TurnSettings",
    "custom_instructions",
    "set_custom_instructions",
    "turn_settings",
    "update_settings",
]

#: The longest system prompt or custom instructions accepted.
MAX_PROMPT_CHARS = 20_000
_SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True)
class TurnSettings:
    """What a turn's request gets from its conversation and its user."""

    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    def apply(self, request: ChatCompletionRequest) -> ChatCompletionRequest:
        """``request`` with these settings where it has none of its own."""
        changes: dict[str, Any] = {}
        has_system = any(message.role in _SYSTEM_ROLES for message in request.messages)
        if self.system_prompt and not has_system:
            system = ChatMessage(role="system", content=self.system_prompt)
            changes["messages"] = [system, *request.messages]
        if self.temperature is not None and request.temperature is None:
            changes["temperature"] = self.temperature
        if self.max_tokens is not None and request.output_limit() is None:
            changes["max_tokens"] = self.max_tokens
        return request.model_copy(update=changes) if changes else request


async def turn_settings(
    session: AsyncSession, *, user_id: int, conversation: Conversation | None
) -> TurnSettings:
    """The settings of a turn in ``conversation`` (``None``: a new one) of the user."""
    prompt = conversation.system_prompt if conversation is not None else None
    if not prompt:
        prompt = await custom_instructions(session, user_id=user_id)
    if conversation is None:
        return TurnSettings(system_prompt=prompt or None)
    return TurnSettings(
        system_prompt=prompt or None,
        temperature=conversation.temperature,
        max_tokens=conversation.max_tokens,
    )


async def update_settings(
    session: AsyncSession, *, user_id: int, conversation_id: int, values: dict[str, Any]
) -> Conversation:
    """Set the conversation's ``system_prompt``, ``temperature`` and ``max_tokens`` given
    in ``values`` (``None`` or an empty prompt clears one); its place by activity is kept."""
    conversation = await get_conversation(session, user_id=user_id, conversation_id=conversation_id)
    if "system_prompt" in values:
        values = {**values, "system_prompt": (values["system_prompt"] or "").strip() or None}
    if values:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(**values, updated_at=Conversation.updated_at)
        )
        await session.commit()
        await session.refresh(conversation)
    return conversation


async def custom_instructions(session: AsyncSession, *, user_id: int) -> str | None:
    """The user's default system prompt, read now (a signed-in user's object is cached)."""
    text: str | None = await session.scalar(
        select(User.custom_instructions).where(User.id == user_id)
    )
    return text


async def set_custom_instructions(session: AsyncSession, *, user_id: int, text: str | None) -> None:
    """The user's default system prompt (``None`` or blank: none)."""
    value = (text or "").strip() or None
    await session.execute(update(User).where(User.id == user_id).values(custom_instructions=value))
    await session.commit()
