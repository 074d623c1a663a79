"""The chat page, ``/language-models/{model}`` (``?c=ID`` opens a conversation).

The page is a shell: ``static/chat.js`` loads the conversations and messages, streams
answers from ``POST /v2/llm/chat/completions`` and asks :mod:`modelyard.web.chat_api`
for server-rendered Markdown once an answer is complete.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from modelyard.api.deps import OptionalCaller, SessionDep
from modelyard.api.model_lists import model_list
from modelyard.web.rendering import redirect, render, sign_in_redirect, signed_in

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _conversation_id(value: str | None) -> int | None:
    if not value or len(value) > 10 or not (value.isascii() and value.isdigit()):
        return None
    return int(value) if 0 < int(value) < 2**31 else None


@router.get("/chat", response_model=None)
async def chat_shortcut(request: Request, caller: OptionalCaller, session: SessionDep) -> Response:
    """To the chat with the first chat model of the user's list (or to the models page)."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    first = next(iter((await model_list(request, session, page.user)).chat), None)
    return redirect(f"/language-models/{quote(first.name)}" if first else "/language-models")


@router.get("/language-models/{model:path}", response_model=None)
async def chat_page(
    model: str,
    request: Request,
    caller: OptionalCaller,
    session: SessionDep,
    c: str | None = None,
) -> Response:
    """Chat with ``model`` (any name of the model list, or any name the gateway knows);
    the switcher offers the chat models of the list, routes included."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    listed = await model_list(request, session, page.user)
    current = listed.entry(model)
    name = current.name if current else model[:300]
    choices = listed.chat
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
