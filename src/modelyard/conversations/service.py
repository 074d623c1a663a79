"""Conversations of one user: reading, searching, deleting, and storing turns (renaming,
pinning and archiving: :mod:`.organise`).

Every query is scoped by the owner's id: another user's conversation (staff included) is
indistinguishable from one that does not exist, and both raise the same 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.conversations.attachments import link_attachments
from modelyard.conversations.versions import all_messages, attach_point, shown_branch
from modelyard.db.models import Conversation, ConversationMessage
from modelyard.db.types import utcnow
from modelyard.errors import NotFoundError

__all__ = [
    "DEFAULT_TITLE",
    "TITLE_LENGTH",
    "Page",
    "Totals",
    "TurnMessage",
    "add_turn",
    "create_conversation",
    "delete_conversation",
    "derive_title",
    "discard_if_empty",
    "extend_answer",
    "get_conversation",
    "list_conversations",
    "list_messages",
    "message_text",
    "not_found",
    "totals",
]

#: The title of a conversation whose first message has no text.
DEFAULT_TITLE = "New chat"
#: Titles derived from the first message are cut to about this many characters.
TITLE_LENGTH = 60

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the total number of matching items."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Totals:
    """What a conversation's messages add up to (every version: each was paid for)."""

    message_count: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def not_found(conversation_id: int) -> NotFoundError:
    return NotFoundError(
        f"No conversation with id {conversation_id} for this account.",
        param="conversation_id",
        code="conversation_not_found",
    )


def message_text(content: str | list[dict[str, Any]] | None) -> str:
    """The text of a chat message's content; non-text parts become ``[type]``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        kind = str(part.get("type", "part"))
        parts.append(str(part.get("text", "")) if kind == "text" else f"[{kind}]")
    return "\n".join(parts)


def derive_title(text: str) -> str:
    """A title from a first message: its first non-blank line, cut on a word boundary."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = " ".join(line.split())
    if not line:
        return DEFAULT_TITLE
    if len(line) <= TITLE_LENGTH:
        return line
    window = line[: TITLE_LENGTH + 1]
    cut = window.rsplit(" ", 1)[0] if " " in window else ""
    if len(cut) < TITLE_LENGTH // 2:  # one very long word: cut inside it
        cut = line[:TITLE_LENGTH]
    return cut.rstrip(" ,.;:-") + "…"


async def create_conversation(session: AsyncSession, *, user_id: int, title: str) -> Conversation:
    """A new, empty conversation (committed)."""
    conversation = Conversation(user_id=user_id, title=title[:200] or DEFAULT_TITLE)
    session.add(conversation)
    await session.commit()
    return conversation


async def get_conversation(
    session: AsyncSession, *, user_id: int, conversation_id: int
) -> Conversation:
    """The user's conversation, or a 404 (also when it belongs to someone else)."""
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )
    if conversation is None:
        raise not_found(conversation_id)
    return conversation


def _search(query: str) -> ColumnElement[bool]:
    """Title or any message contains ``query`` (case-insensitive, wildcards taken literally)."""
    in_messages = exists().where(
        ConversationMessage.conversation_id == Conversation.id,
        ConversationMessage.content.icontains(query, autoescape=True),
    )
    return or_(Conversation.title.icontains(query, autoescape=True), in_messages)


async def list_conversations(
    session: AsyncSession,
    *,
    user_id: int,
    limit: int,
    offset: int,
    query: str | None = None,
    archived: bool = False,
    pinned_first: bool = False,
) -> Page[Conversation]:
    """The user's conversations that are not archived, most recently active first
    (``pinned_first``: the pinned ones before the others); ``archived``: only the archived
    ones, the last archived first."""
    where: list[ColumnElement[bool]] = [
        Conversation.user_id == user_id,
        Conversation.archived_at.is_not(None) if archived else Conversation.archived_at.is_(None),
    ]
    if query:
        where.append(_search(query))
    total = await session.scalar(select(func.count()).select_from(Conversation).where(*where))
    order: list[ColumnElement[Any]] = [Conversation.updated_at.desc(), Conversation.id.desc()]
    if archived:
        order.insert(0, Conversation.archived_at.desc())
    elif pinned_first:
        order.insert(0, Conversation.pinned.desc())
    rows = await session.scalars(
        select(Conversation).where(*where).order_by(*order).limit(limit).offset(offset)
    )
    return Page(list(rows), total or 0, limit, offset)


async def list_messages(
    session: AsyncSession,
    *,
    conversation: Conversation,
    limit: int | None = None,
    offset: int = 0,
) -> Page[ConversationMessage]:
    """The shown branch of a conversation's messages, oldest first (the caller has
    checked the owner; see :mod:`~modelyard.conversations.versions`)."""
    branch = shown_branch(conversation, await all_messages(session, conversation.id))
    end = None if limit is None else offset + limit
    return Page(branch[offset:end], len(branch), len(branch) if limit is None else limit, offset)


async def totals(session: AsyncSession, *, conversation_id: int) -> Totals:
    """Message count, tokens and cost of a conversation."""
    row = (
        await session.execute(
            select(
                func.count(ConversationMessage.id),
                func.coalesce(func.sum(ConversationMessage.input_tokens), 0),
                func.coalesce(func.sum(ConversationMessage.output_tokens), 0),
                func.coalesce(func.sum(ConversationMessage.cost_usd), 0),
            ).where(ConversationMessage.conversation_id == conversation_id)
        )
    ).one()
    return Totals(int(row[0]), int(row[1]), int(row[2]), Decimal(str(row[3])))


async def delete_conversation(session: AsyncSession, *, user_id: int, conversation_id: int) -> None:
    """Delete the conversation and its messages, or raise a 404."""
    result = await session.execute(
        delete(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )
    if getattr(result, "rowcount", 0) == 0:
        raise not_found(conversation_id)
    await session.commit()


async def discard_if_empty(session: AsyncSession, *, conversation_id: int) -> bool:
    """Delete the conversation when it has no message (a first turn that failed)."""
    has_messages = exists().where(ConversationMessage.conversation_id == conversation_id)
    result = await session.execute(
        delete(Conversation).where(Conversation.id == conversation_id, ~has_messages)
    )
    await session.commit()
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class TurnMessage:
    """One side of a turn, as it will be stored."""

    content: str
    model: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int | None = None
    created_at: datetime | None = None
    #: ``None``: complete; ``stopped``: cut by the client, holding what had arrived.
    status: str | None = None


async def add_turn(
    session: AsyncSession,
    *,
    user_id: int,
    conversation_id: int,
    question: TurnMessage | None,
    answer: TurnMessage,
    version_of: int | None = None,
    attachment_ids: Sequence[int] = (),
) -> bool:
    """Store a user message and its answer in one transaction, as the shown branch's new
    leaf.

    The turn follows the shown branch; with ``version_of`` (a user message of the
    conversation) it is a new version of that message instead: a regenerated answer
    under it when ``question`` asks the same, else a new question beside it. Returns
    ``False`` (storing nothing) when the conversation was deleted meanwhile. The user
    message gets ``attachment_ids`` (those still unsent).
    """
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )
    if conversation is None:
        return False
    parent = await attach_point(session, conversation)
    if version_of is not None:
        replaced = await session.get(ConversationMessage, version_of)
        if replaced is None or replaced.conversation_id != conversation_id:
            return False
        if question is not None and question.content == replaced.content:
            question, parent = None, replaced.id
        else:
            parent = replaced.parent_id
    for role, message in (("user", question), ("assistant", answer)):
        if message is None:
            continue
        row = ConversationMessage(
            conversation_id=conversation_id,
            parent_id=parent,
            role=role,
            content=message.content,
            model=message.model,
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            cost_usd=message.cost_usd,
            latency_ms=message.latency_ms,
            status=message.status,
            created_at=message.created_at or utcnow(),
        )
        session.add(row)
        await session.flush()
        parent = row.id
        if role == "user":
            await link_attachments(
                session, user_id=user_id, message_id=row.id, attachment_ids=attachment_ids
            )
    conversation.current_message_id = parent
    conversation.updated_at = utcnow()
    if answer.model:
        conversation.model = answer.model
    await session.commit()
    return True


async def extend_answer(
    session: AsyncSession,
    *,
    user_id: int,
    conversation_id: int,
    message_id: int,
    more: TurnMessage,
) -> bool:
    """Append a continuation to a stopped answer: its text, tokens and cost added, its
    status ``more``'s (stopped again, or complete). ``False`` (nothing stored) when the
    conversation or the message went away meanwhile."""
    message = await session.scalar(
        select(ConversationMessage)
        .join(Conversation, Conversation.id == ConversationMessage.conversation_id)
        .where(
            ConversationMessage.id == message_id,
            ConversationMessage.conversation_id == conversation_id,
            Conversation.user_id == user_id,
        )
    )
    if message is None:
        return False
    message.content += more.content
    message.input_tokens += more.input_tokens
    message.output_tokens += more.output_tokens
    message.cost_usd += more.cost_usd
    if more.latency_ms is not None:
        message.latency_ms = (message.latency_ms or 0) + more.latency_ms
    message.status = more.status
    await session.commit()
    return True
