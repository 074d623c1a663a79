"""Message versions: a conversation's messages form a tree, and one branch is shown.

Every message names its ``parent_id`` (the message it follows; ``None`` for a first
message), and the conversation its shown leaf (``current_message_id``). Regenerate adds an
answer beside the earlier ones under the same question; editing a question adds a question
beside it under the same parent, with its own answer. Nothing is deleted: the earlier
versions stay reachable (``< 1/2 >`` in the chat) and their cost stays in the totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import Conversation, ConversationMessage
from modelyard.errors import NotFoundError

__all__ = [
    "Version",
    "all_messages",
    "attach_point",
    "newest_leaf",
    "select_version",
    "shown_branch",
    "versions",
]


@dataclass(frozen=True)
class Version:
    """Where a message stands among its versions (siblings of the same role)."""

    #: 1-based position, oldest first.
    index: int
    count: int
    #: The versions' ids, oldest first.
    ids: tuple[int, ...]


def _leaf_id(conversation: Conversation, by_id: dict[int, ConversationMessage]) -> int | None:
    if conversation.current_message_id in by_id:
        return conversation.current_message_id
    return max(by_id) if by_id else None


def shown_branch(
    conversation: Conversation, messages: Sequence[ConversationMessage]
) -> list[ConversationMessage]:
    """The messages of the shown branch, oldest first: from the shown leaf (or, where it is
    unset or gone, the newest message) up through the parents."""
    by_id = {message.id: message for message in messages}
    branch: list[ConversationMessage] = []
    current = _leaf_id(conversation, by_id)
    while current is not None and current in by_id and len(branch) < len(by_id):
        message = by_id[current]
        branch.append(message)
        current = message.parent_id
    branch.reverse()
    return branch


def versions(
    branch: Sequence[ConversationMessage], messages: Sequence[ConversationMessage]
) -> list[Version]:
    """Each branch message's place among its versions."""
    siblings: dict[tuple[int | None, str], list[int]] = {}
    for message in sorted(messages, key=lambda m: m.id):
        siblings.setdefault((message.parent_id, message.role), []).append(message.id)
    placed = []
    for message in branch:
        ids = tuple(siblings[(message.parent_id, message.role)])
        placed.append(Version(ids.index(message.id) + 1, len(ids), ids))
    return placed


def newest_leaf(message_id: int, messages: Sequence[ConversationMessage]) -> int:
    """The leaf reached from ``message_id`` by always following the newest child."""
    newest_child: dict[int, int] = {}
    for message in messages:
        if message.parent_id is not None:
            newest_child[message.parent_id] = max(
                newest_child.get(message.parent_id, 0), message.id
            )
    current = message_id
    for _ in range(len(messages)):
        if current not in newest_child:
            break
        current = newest_child[current]
    return current


async def all_messages(session: AsyncSession, conversation_id: int) -> list[ConversationMessage]:
    """Every message of the conversation, every version, oldest first."""
    rows = await session.scalars(
        select(ConversationMessage)
        .where(ConversationMessage.conversation_id == conversation_id)
        .order_by(ConversationMessage.id)
    )
    return list(rows)


async def attach_point(session: AsyncSession, conversation: Conversation) -> int | None:
    """The message a new turn follows: the shown branch's leaf."""
    messages = await all_messages(session, conversation.id)
    branch = shown_branch(conversation, messages)
    return branch[-1].id if branch else None


async def select_version(
    session: AsyncSession, conversation: Conversation, message_id: int
) -> None:
    """Show the branch through ``message_id`` (its newest continuation); 404 when the
    conversation has no such message."""
    messages = await all_messages(session, conversation.id)
    if all(message.id != message_id for message in messages):
        raise NotFoundError(
            f"Conversation {conversation.id} has no message {message_id}; "
            "reload the conversation and try again.",
            param="message_id",
            code="message_not_found",
        )
    conversation.current_message_id = newest_leaf(message_id, messages)
    await session.commit()
