"""The chat page, ``/language-models/{model}`` (``?c=ID`` opens a conversation).

The page is a shell: ``static/chat.js`` loads the conversations and messages, streams
answers from ``POST /v2/llm/chat/completions`` and asks :mod:`modelyard.web.chat_api`
for server-rendered Markdown once an answer is complete.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from modelyard.api.deps import OptionalCaller, SessionDep, app_state
from modelyard.web.catalog import load_catalog
from modelyard.web.rendering import redirect, render, sign_in_redirect, signed_in

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _conversation_id(value: str | None) -> int | None:
    if not value or len(value) > 10 or not (value.isascii() and value.isdigit()):
        return None
    return int(value) if 0 < int(value) < 2**31 else None


@router.get("/chat", response_model=None)
async def chat_shortcut(request: Request, caller: OptionalCaller, session: SessionDep) -> Response:
    """To the chat with the first chat model the user can use (or to the models page)."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    catalog = await load_catalog(
        session, user=page.user, system_keys=app_state(request).system_keys
    )
    first = next((entry for entry in catalog if entry.usable and entry.chat), None)
    return redirect(f"/language-models/{quote(first.name)}" if first else "/language-models")


@router.get("/language-models/{model:path}", response_model=None)
async def chat_page(
    model: str,
    request: Request,
    caller: OptionalCaller,
    session: SessionDep,
    c: str | None = None,
) -> Response:
    """Chat with ``model`` (a catalog model or any name the gateway knows)."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    catalog = await load_catalog(
        session, user=page.user, system_keys=app_state(request).system_keys
    )
    current = next((entry for entry in catalog if entry.matches(model)), None)
    name = current.name if current else model[:300]
    choices = [entry for entry in catalog if entry.usable and entry.chat]
    return render(
        request,
        "chat.html",
        page=page,
        nav="chat",
        model=name,
        current=current,
        choices=choices,
        listed=any(entry.name == name for entry in choices),
        conversation_id=_conversation_id(c),
    )
