"""Read-only share links of the signed-in user's conversations (see
:mod:`modelyard.conversations.sharing`; the page itself is ``/share/{share_id}``).

Only the owner shares or revokes: another user's conversation is a 404, whatever the method.
"""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from modelyard.api.deps import CurrentUser, SessionDep
from modelyard.conversations.sharing import revoke_share, share_conversation

__all__ = ["router"]

router = APIRouter(prefix="/v2/conversations", tags=["conversations"])


class SharePublic(BaseModel):
    """A conversation's read-only link."""

    conversation_id: int
    share_id: str
    #: The page's path, ``/share/{share_id}``.
    path: str


@router.post("/{conversation_id}/share")
async def share(conversation_id: int, user: CurrentUser, session: SessionDep) -> SharePublic:
    """A read-only link to the conversation for anyone who has it (the same link when it
    is shared already)."""
    share_id = await share_conversation(session, user_id=user.id, conversation_id=conversation_id)
    return SharePublic(
        conversation_id=conversation_id, share_id=share_id, path=f"/share/{share_id}"
    )


@router.delete("/{conversation_id}/share", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(conversation_id: int, user: CurrentUser, session: SessionDep) -> None:
    """Stop sharing: the link is a 404 from now on (sharing again makes a new one)."""
    await revoke_share(session, user_id=user.id, conversation_id=conversation_id)
