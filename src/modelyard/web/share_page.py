"""``/share/{share_id}``: a conversation its owner shared, read-only.

Anyone with the link sees it, signed in or not, as ChatGPT's shared links work: the id is
random (128 bits), so the link is the permission, and the owner can revoke it at once
(then it is a 404, as is any id never made). The page shows the title and the messages
with their Markdown rendered as in the chat, and which model answered; never the owner,
tokens, costs, settings or any id of the database. It is not cached and asks search
engines not to index it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from modelyard.api.deps import OptionalCaller, SessionDep
from modelyard.conversations.service import list_messages
from modelyard.conversations.sharing import shared_conversation
from modelyard.errors import NotFoundError
from modelyard.web.markdown import render_markdown
from modelyard.web.rendering import render, signed_in

__all__ = ["SharedMessage", "router"]

router = APIRouter(include_in_schema=False)

#: Sent with the page and its 404 besides the app's security headers.
_SHARE_HEADERS = {"cache-control": "no-store", "x-robots-tag": "noindex, nofollow"}


@dataclass(frozen=True)
class SharedMessage:
    """One message as the share page shows it."""

    role: str
    #: The message as stored (a question is shown as typed).
    text: str
    #: An answer's Markdown rendered as safe HTML (empty for a question).
    html: str
    model: str | None
    stopped: bool


@router.get("/share/{share_id}", response_model=None)
async def share_page(
    share_id: str, request: Request, caller: OptionalCaller, session: SessionDep
) -> Response:
    """The shared conversation, or a 404 page (never shared, or no longer)."""
    page = signed_in(caller)
    try:
        conversation = await shared_conversation(session, share_id)
    except NotFoundError:
        response: Response = render(request, "share_missing.html", page=page, status_code=404)
    else:
        stored = (await list_messages(session, conversation=conversation)).items
        html = await run_in_threadpool(
            lambda: [render_markdown(m.content) if m.role == "assistant" else "" for m in stored]
        )
        messages = [
            SharedMessage(
                role=message.role,
                text=message.content,
                html=rendered,
                model=message.model if message.role == "assistant" else None,
                stopped=message.status == "stopped",
            )
            for message, rendered in zip(stored, html, strict=True)
        ]
        response = render(
            request,
            "share.html",
            page=page,
            title=conversation.title,
            updated_at=conversation.updated_at,
            messages=messages,
        )
    response.headers.update(_SHARE_HEADERS)
    return response
