"""Titles written by a model from a conversation's first exchange.

A new conversation is titled with its question's first words at once
(:func:`~modelyard.conversations.service.derive_title`). After the first answer the chat
page asks for a better one: when ``MODELYARD_TITLE_MODEL`` names a (cheap) model, it is
asked through the gateway as the user, metered and recorded like a chat request (endpoint
``chat.title``). Its answer replaces the title only while the title is still the automatic
one: a rename (or a title already written) is never overwritten, and a failure or an empty
answer keeps the first words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.conversations.service import DEFAULT_TITLE, derive_title
from modelyard.db.models import Conversation, ConversationMessage

__all__ = [
    "EXCHANGE_CHARS",
    "TITLE_ENDPOINT",
    "TITLE_MAX_TOKENS",
    "FirstExchange",
    "clean_title",
    "first_exchange",
    "set_generated_title",
    "title_messages",
]

#: The usage records' endpoint of a title request.
TITLE_ENDPOINT = "chat.title"
#: The question and the answer are each cut to this many characters for the title model.
EXCHANGE_CHARS = 2000
#: A title is a few words: the most tokens the title model may answer with.
TITLE_MAX_TOKENS = 30

_INSTRUCTIONS = (
    "You name chat conversations. Reply with a title of 3 to 7 words that says what the "
    "conversation below is about, in the language of the question. Reply with the title "
    "only: no quotes, no Markdown, no full stop."
)
#: Quotes, Markdown marks and end punctuation around a title.
_LABEL = re.compile(r"^[\s*#_\"'`]*title\s*:", re.IGNORECASE)
_STRIP = " \t\"'`*#_\u201c\u201d\u2018\u2019\u00ab\u00bb.\u3002!:;-\u2013\u2014"


@dataclass(frozen=True)
class FirstExchange:
    """A conversation's first question and answer, and its automatic title."""

    conversation_id: int
    question: str
    answer: str
    #: The title now, the question's first words (what a written title may replace).
    title: str


async def first_exchange(session: AsyncSession, conversation: Conversation) -> FirstExchange | None:
    """The first question and answer, while the title is still the automatic one;
    ``None`` when renamed, titled already, or not answered yet."""
    first = list(
        await session.scalars(
            select(ConversationMessage)
            .where(ConversationMessage.conversation_id == conversation.id)
            .order_by(ConversationMessage.id)
            .limit(2)
        )
    )
    if [message.role for message in first] != ["user", "assistant"]:
        return None
    question, answer = first[0].content, first[1].content
    if not answer.strip() or conversation.title != derive_title(question):
        return None
    return FirstExchange(conversation.id, question, answer, conversation.title)


def title_messages(exchange: FirstExchange) -> list[dict[str, str]]:
    """The title model's prompt: the instructions and the exchange, each side cut."""
    conversation = (
        f"Question:\n{exchange.question[:EXCHANGE_CHARS]}\n\n"
        f"Answer:\n{exchange.answer[:EXCHANGE_CHARS]}"
    )
    return [
        {"role": "system", "content": _INSTRUCTIONS},
        {"role": "user", "content": conversation},
    ]


def clean_title(text: str) -> str | None:
    """The title in a model's answer: its first line without a ``Title:`` label, quotes,
    Markdown marks or a full stop, cut like a derived title; ``None`` when nothing is left."""
    lines = (_LABEL.sub("", line, count=1).strip(_STRIP) for line in text.splitlines())
    line = next((line for line in lines if line), "")
    if not line:
        return None
    title = derive_title(line)
    return None if title == DEFAULT_TITLE else title


async def set_generated_title(session: AsyncSession, exchange: FirstExchange, title: str) -> bool:
    """Replace the automatic title with ``title``, unless the conversation was renamed
    (or deleted) meanwhile; its place by activity is kept. Returns whether it was set."""
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == exchange.conversation_id, Conversation.title == exchange.title)
        .values(title=title, updated_at=Conversation.updated_at)
    )
    await session.commit()
    return bool(getattr(result, "rowcount", 0))
