"""A conversation as a downloadable file: Markdown for reading, a filename for both formats."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from modelyard.conversations.service import Totals
from modelyard.db.models import Conversation, ConversationMessage

__all__ = ["export_filename", "to_markdown", "usd"]

_SLUG_LENGTH = 40


def usd(value: Decimal) -> str:
    """A cost as ``$0.0000123`` (no exponent, no trailing zeros)."""
    if value == 0:
        return "$0"
    return f"${format(value.normalize(), 'f')}"


def export_filename(conversation: Conversation, extension: str) -> str:
    """``conversation-<id>-<title-slug>.<extension>`` (ASCII only, safe in a header)."""
    ascii_title = unicodedata.normalize("NFKD", conversation.title).encode("ascii", "ignore")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.decode().lower()).strip("-")
    slug = slug[:_SLUG_LENGTH].rstrip("-")
    stem = f"conversation-{conversation.id}" + (f"-{slug}" if slug else "")
    return f"{stem}.{extension}"


def _tokens(message: ConversationMessage) -> str:
    parts = []
    if message.input_tokens:
        parts.append(f"{message.input_tokens} tokens in")
    if message.output_tokens:
        parts.append(f"{message.output_tokens} tokens out")
    return ", ".join(parts) or "0 tokens"


def _meta(message: ConversationMessage) -> str:
    parts = [message.model or "unknown model", _tokens(message), usd(message.cost_usd)]
    if message.latency_ms is not None:
        parts.append(f"{message.latency_ms} ms")
    if message.status:
        parts.append(message.status)  # "stopped": the answer was cut here
    return " · ".join(parts)


def to_markdown(
    conversation: Conversation, messages: Sequence[ConversationMessage], totals: Totals
) -> str:
    """The title, a summary line, then each message with its role, model, tokens and cost."""
    lines = [
        f"# {conversation.title}",
        "",
        f"- Created: {conversation.created_at:%Y-%m-%d %H:%M} UTC",
        f"- Messages: {totals.message_count}",
        f"- Tokens: {totals.input_tokens + totals.output_tokens} "
        f"({totals.input_tokens} in, {totals.output_tokens} out)",
        f"- Cost: {usd(totals.cost_usd)}",
    ]
    for message in messages:
        lines += [
            "",
            "---",
            "",
            f"## {message.role.capitalize()} ({message.created_at:%Y-%m-%d %H:%M:%S} UTC)",
            "",
            f"*{_meta(message)}*",
            "",
            message.content,
        ]
    return "\n".join(lines) + "\n"
