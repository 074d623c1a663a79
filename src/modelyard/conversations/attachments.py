"""Files attached to chat messages: images sent to the model as image parts, text,
Markdown, code and PDF files whose text is inlined as context within a token budget.

A file is checked when it is uploaded (its kind from its bytes, not from the name or the
browser's media type; its size; its text decoded or extracted) and kept for its owner
only, unsent (``message_id`` unset). A chat turn names its attachments by id on each
message (``attachment_ids``); :func:`expand_messages` turns them into content parts —
``image_url`` data URLs, which every provider adapter translates (Anthropic image blocks,
Gemini inline data), and ``text`` parts holding the file's text between ``<file>`` tags —
and the turn links the new message's attachments to it when it is stored. Another
user's attachment is a 404 like a missing one.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import MessageAttachment
from modelyard.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from modelyard.gateway.schemas import ChatMessage

__all__ = [
    "ATTACHMENT_IDS",
    "MAX_ATTACHMENTS",
    "MAX_FILE_BYTES",
    "MAX_IMAGE_BYTES",
    "TEXT_TOKEN_BUDGET",
    "CheckedFile",
    "attachments_of",
    "check_file",
    "expand_messages",
    "get_attachment",
    "link_attachments",
    "names_attachments",
    "store_attachment",
]

logger = logging.getLogger("modelyard.conversations")

#: The message field naming a message's attachments (the chat page's own; never sent on).
ATTACHMENT_IDS = "attachment_ids"
#: An image's largest size (Anthropic's limit per image; OpenAI's and Gemini's are higher).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: A text or PDF file's largest size.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: The most files one message takes.
MAX_ATTACHMENTS = 10
#: The most tokens (estimated) that the text files of one request inline, together.
TEXT_TOKEN_BUDGET = 32_000
#: Characters per token, for the estimate.
_CHARS_PER_TOKEN = 4
#: The most PDF pages read.
_MAX_PDF_PAGES = 500

_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_TEXT_SUFFIXES = frozenset(
    ".txt .md .markdown .rst .csv .tsv .json .jsonl .yaml .yml .toml .ini .cfg .xml .html"
    " .htm .css .js .mjs .ts .tsx .jsx .py .rb .go .rs .java .kt .c .h .cc .cpp .hpp .cs"
    " .php .sh .bash .sql .r .swift .scala .lua .pl .log .tex .srt .vtt".split()
)
_UNSUPPORTED = (
    "Attach images (PNG, JPEG, GIF or WebP), PDF files, or text files "
    "(plain text, Markdown, CSV, JSON, code)."
)


@dataclass(frozen=True)
class CheckedFile:
    """An uploaded file as it will be kept."""

    filename: str
    media_type: str
    kind: str
    size_bytes: int
    content: bytes | None
    text: str | None
    token_estimate: int


def _image_type(data: bytes) -> str | None:
    for signature, media_type in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _estimate(text: str) -> int:
    return -(-len(text) // _CHARS_PER_TOKEN)


def _pdf_text(filename: str, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadRequestError(
                f"{filename} is encrypted; attach a copy without a password.", param="file"
            )
        pages = reader.pages[:_MAX_PDF_PAGES]
        text = "\n\n".join((page.extract_text() or "").strip() for page in pages).strip()
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as error:
        logger.info("An attached PDF could not be read: %s", type(error).__name__)
        raise BadRequestError(
            f"{filename} could not be read as a PDF; check the file or attach its text.",
            param="file",
        ) from error
    if not text:
        raise BadRequestError(
            f"{filename} has no text layer (a scanned document?); attach its text instead.",
            param="file",
        )
    return text


def _decoded(filename: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequestError(
            f"{filename} is not UTF-8 text; save it as UTF-8 or attach a PDF. " + _UNSUPPORTED,
            param="file",
        ) from None
    if "\x00" in text:
        raise BadRequestError(f"{filename} is a binary file. " + _UNSUPPORTED, param="file")
    return text


def _too_large(filename: str, size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{filename} is {size / 1_048_576:.1f} MiB; files of this kind may have at most "
        f"{limit // 1_048_576} MiB.",
        param="file",
    )


def check_file(filename: str, data: bytes) -> CheckedFile:
    """``data`` as an attachment, or a 400/413/415 saying what is wrong with it."""
    name = PurePosixPath(filename.replace("\\", "/")).name.strip()[:255] or "attachment"
    if not data:
        raise BadRequestError(f"{name} is empty.", param="file")
    image_type = _image_type(data)
    if image_type is not None:
        if len(data) > MAX_IMAGE_BYTES:
            raise _too_large(name, len(data), MAX_IMAGE_BYTES)
        return CheckedFile(name, image_type, "image", len(data), data, None, 0)
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(name, len(data), MAX_FILE_BYTES)
    if data.startswith(b"%PDF-"):
        text, media_type = _pdf_text(name, data), "application/pdf"
    elif PurePosixPath(name).suffix.lower() in _TEXT_SUFFIXES:
        text, media_type = _decoded(name, data), "text/plain"
    else:
        raise UnsupportedMediaTypeError(
            f"{name}: this kind of file is not supported. " + _UNSUPPORTED, param="file"
        )
    tokens = _estimate(text)
    if tokens > TEXT_TOKEN_BUDGET:
        raise PayloadTooLargeError(
            f"{name} holds about {tokens:,} tokens of text; a message takes at most "
            f"{TEXT_TOKEN_BUDGET:,}. Attach a shorter excerpt.",
            param="file",
        )
    return CheckedFile(name, media_type, "text", len(data), None, text, tokens)


async def store_attachment(
    session: AsyncSession, *, user_id: int, checked: CheckedFile
) -> MessageAttachment:
    """Keep ``checked`` for ``user_id``, unsent."""
    row = MessageAttachment(
        user_id=user_id,
        filename=checked.filename,
        media_type=checked.media_type,
        kind=checked.kind,
        size_bytes=checked.size_bytes,
        content=checked.content,
        text=checked.text,
        token_estimate=checked.token_estimate,
    )
    session.add(row)
    await session.commit()
    return row


def _missing(attachment_id: int) -> NotFoundError:
    return NotFoundError(
        f"There is no attachment {attachment_id}; attach the file again.",
        param=ATTACHMENT_IDS,
        code="attachment_not_found",
    )


async def get_attachment(
    session: AsyncSession, *, user_id: int, attachment_id: int
) -> MessageAttachment:
    """The user's attachment, or a 404 (another user's included)."""
    row = await session.scalar(
        select(MessageAttachment).where(
            MessageAttachment.id == attachment_id, MessageAttachment.user_id == user_id
        )
    )
    if row is None:
        raise _missing(attachment_id)
    return row


def _ids(message: ChatMessage) -> list[int]:
    given = (message.model_extra or {}).get(ATTACHMENT_IDS)
    if given is None:
        return []
    if (
        not isinstance(given, list)
        or len(given) > MAX_ATTACHMENTS
        or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in given)
    ):
        raise BadRequestError(
            f"{ATTACHMENT_IDS} is a list of at most {MAX_ATTACHMENTS} attachment ids.",
            param=ATTACHMENT_IDS,
        )
    return list(dict.fromkeys(given))


def _part(row: MessageAttachment) -> dict[str, Any]:
    if row.kind == "image" and row.content is not None:
        data = base64.b64encode(row.content).decode("ascii")
        return {"type": "image_url", "image_url": {"url": f"data:{row.media_type};base64,{data}"}}
    name = row.filename.replace('"', "'")
    return {"type": "text", "text": f'<file name="{name}">\n{row.text or ""}\n</file>'}


def _with_parts(message: ChatMessage, rows: list[MessageAttachment]) -> ChatMessage:
    content = message.content
    parts: list[dict[str, Any]] = []
    if isinstance(content, str) and content:
        parts.append({"type": "text", "text": content})
    elif isinstance(content, list):
        parts.extend(content)
    parts.extend(_part(row) for row in rows)
    data = message.model_dump(exclude_none=True)
    data.pop(ATTACHMENT_IDS, None)
    return ChatMessage.model_validate({**data, "content": parts})


def names_attachments(messages: Sequence[ChatMessage]) -> bool:
    """Whether any message names attachments (else there is nothing to expand)."""
    return any(ATTACHMENT_IDS in (message.model_extra or {}) for message in messages)


def _no_images(model: str, image: MessageAttachment) -> BadRequestError:
    return BadRequestError(
        f"{model[:300]} does not take images, so {image.filename} cannot be sent to it. "
        "Choose a model that takes images (GPT-4o, Claude or Gemini, for example) or "
        "remove the image, then send the message again.",
        param=ATTACHMENT_IDS,
        code="model_takes_no_images",
    )


async def expand_messages(
    session: AsyncSession,
    *,
    user_id: int,
    messages: Sequence[ChatMessage],
    no_images_for: str | None = None,
) -> tuple[list[ChatMessage], list[int]]:
    """The messages with their attachments as content parts, and the ids attached to the
    last user message (the new one). 404 for an attachment not the user's; 413 when the
    text files together exceed :data:`TEXT_TOKEN_BUDGET`; with ``no_images_for`` (the
    name of a model that takes no images), 400 for an image attachment."""
    wanted = [_ids(message) for message in messages]
    every = {i for ids in wanted for i in ids}
    if not every:
        return list(messages), []
    rows = {
        row.id: row
        for row in await session.scalars(
            select(MessageAttachment).where(
                MessageAttachment.id.in_(every), MessageAttachment.user_id == user_id
            )
        )
    }
    for attachment_id in sorted(every - set(rows)):
        raise _missing(attachment_id)
    image = next((rows[i] for ids in wanted for i in ids if rows[i].kind == "image"), None)
    if no_images_for is not None and image is not None:
        raise _no_images(no_images_for, image)
    tokens = sum(rows[i].token_estimate for i in every)
    if tokens > TEXT_TOKEN_BUDGET:
        raise PayloadTooLargeError(
            f"The attached files hold about {tokens:,} tokens of text together; a request "
            f"takes at most {TEXT_TOKEN_BUDGET:,}. Attach fewer or shorter files.",
            param=ATTACHMENT_IDS,
        )
    expanded = [
        _with_parts(message, [rows[i] for i in ids]) if ids else message
        for message, ids in zip(messages, wanted, strict=True)
    ]
    last_user = next(
        (
            ids
            for message, ids in zip(reversed(messages), reversed(wanted), strict=True)
            if message.role == "user"
        ),
        [],
    )
    return expanded, last_user


async def link_attachments(
    session: AsyncSession, *, user_id: int, message_id: int, attachment_ids: Sequence[int]
) -> None:
    """Give the user's attachments among ``attachment_ids`` to ``message_id`` (in the
    caller's transaction): an unsent one becomes the message's; one already sent with
    another message (an edited question sent again with its files) is copied, so that
    each version of the question keeps its own files."""
    if not attachment_ids:
        return
    rows = await session.scalars(
        select(MessageAttachment)
        .where(
            MessageAttachment.id.in_(list(attachment_ids)),
            MessageAttachment.user_id == user_id,
        )
        .order_by(MessageAttachment.id)
    )
    for row in list(rows):
        if row.message_id is None:
            row.message_id = message_id
        elif row.message_id != message_id:
            session.add(
                MessageAttachment(
                    user_id=user_id,
                    message_id=message_id,
                    filename=row.filename,
                    media_type=row.media_type,
                    kind=row.kind,
                    size_bytes=row.size_bytes,
                    content=row.content,
                    text=row.text,
                    token_estimate=row.token_estimate,
                )
            )
    await session.flush()


async def attachments_of(
    session: AsyncSession, message_ids: Sequence[int]
) -> dict[int, list[MessageAttachment]]:
    """The attachments of each of ``message_ids`` (the caller has checked the owner)."""
    found: dict[int, list[MessageAttachment]] = {}
    if not message_ids:
        return found
    rows = await session.scalars(
        select(MessageAttachment)
        .where(MessageAttachment.message_id.in_(list(message_ids)))
        .order_by(MessageAttachment.id)
    )
    for row in rows:
        assert row.message_id is not None
        found.setdefault(row.message_id, []).append(row)
    return found
