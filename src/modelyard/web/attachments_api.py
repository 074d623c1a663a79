"""The chat page's attachments (``/web/api/attachments``, same auth and CSRF as the API).

* ``POST /web/api/attachments`` (multipart ``file``): checked and kept, unsent
  (:mod:`modelyard.conversations.attachments`); answered with its id, name, kind, size and
  token estimate, which the page shows as a chip and names in the next message's
  ``attachment_ids``;
* ``GET /web/api/attachments/{id}``: the file as kept — an image's bytes, a text file's
  (or PDF's extracted) text — for its owner only;
* ``DELETE /web/api/attachments/{id}``: remove one not sent yet (a chip's Remove).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from modelyard.api.deps import CurrentUser, SessionDep
from modelyard.conversations.attachments import (
    MAX_FILE_BYTES,
    check_file,
    get_attachment,
    store_attachment,
)
from modelyard.db.models import MessageAttachment
from modelyard.errors import ConflictError, PayloadTooLargeError

__all__ = ["AttachmentPublic", "router"]

router = APIRouter(prefix="/web/api/attachments", include_in_schema=False)


class AttachmentPublic(BaseModel):
    id: int
    filename: str
    media_type: str
    #: ``image`` or ``text``.
    kind: str
    size_bytes: int
    token_estimate: int

    @classmethod
    def of(cls, row: MessageAttachment) -> AttachmentPublic:
        return cls(
            id=row.id,
            filename=row.filename,
            media_type=row.media_type,
            kind=row.kind,
            size_bytes=row.size_bytes,
            token_estimate=row.token_estimate,
        )


async def _read(file: UploadFile) -> bytes:
    data = await file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise PayloadTooLargeError(
            f"{file.filename or 'The file'} is larger than {MAX_FILE_BYTES // 1_048_576} MiB.",
            param="file",
        )
    return data


@router.post("", status_code=201)
async def upload_attachment(
    user: CurrentUser,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="An image, a PDF or a text file")],
) -> AttachmentPublic:
    """Check and keep one file for the user's next message."""
    checked = check_file(file.filename or "attachment", await _read(file))
    return AttachmentPublic.of(await store_attachment(session, user_id=user.id, checked=checked))


@router.get("/{attachment_id}")
async def attachment_content(
    attachment_id: int, user: CurrentUser, session: SessionDep
) -> Response:
    """The attachment as kept (the owner's only; others get a 404)."""
    row = await get_attachment(session, user_id=user.id, attachment_id=attachment_id)
    headers = {"x-content-type-options": "nosniff", "cache-control": "private, max-age=3600"}
    if row.kind == "image" and row.content is not None:
        return Response(row.content, media_type=row.media_type, headers=headers)
    return Response(row.text or "", media_type="text/plain; charset=utf-8", headers=headers)


@router.delete("/{attachment_id}", status_code=204)
async def delete_attachment(attachment_id: int, user: CurrentUser, session: SessionDep) -> Response:
    """Remove an attachment not sent yet."""
    row = await get_attachment(session, user_id=user.id, attachment_id=attachment_id)
    if row.message_id is not None:
        raise ConflictError(
            f"Attachment {attachment_id} belongs to a sent message; delete the conversation "
            "to remove it.",
            code="attachment_sent",
        )
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)
