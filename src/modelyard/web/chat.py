"""The chat page, ``/language-models/{model}`` (``?c=ID`` opens a conversation), and
``/chat``: the user's last conversation, or a new one with their first chat model.

The page is a shell: ``static/chat.js`` loads the conversations and messages, streams
answers from ``POST /v2/llm/chat/completions`` and asks :mod:`modelyard.web.chat_api`
for server-rendered Markdown once an answer is complete.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from modelyard.api.deps import OptionalCaller, SessionDep
from modelyard.api.model_lists import model_list
from modelyard.conversations.service import list_conversations
from modelyard.model_list import ModelList
from modelyard.model_list.default_chat import chat_model_for, default_chat_model
from modelyard.model_list.vision import name_takes_images
from modelyard.web.rendering import Page, redirect, render, sign_in_redirect, signed_in

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _conversation_id(value: str | None) -> int | None:
    if not value or len(value) > 10 or not (value.isascii() and value.isdigit()):
        return None
    return int(value) if 0 < int(value) < 2**31 else None


def _chat_url(model: str, conversation_id: int | None = None) -> str:
    return f"/language-models/{quote(model)}" + (f"?c={conversation_id}" if conversation_id else "")


@router.get("/chat", response_model=None)
async def chat_shortcut(request: Request, caller: OptionalCaller, session: SessionDep) -> Response:
    """The user's last conversation (with its model, if still a chat model of the list,
    else the default one), or a new chat with the default chat model (the admin's, when it
    is one of the user's chat models, else their first); without any chat model, the chat
    page itself says what to do (an embedding model is never a chat default)."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    listed = await model_list(request, session, page.user)
    first = chat_model_for(listed, await default_chat_model(session))
    last = next(
        iter((await list_conversations(session, user_id=page.user.id, limit=1, offset=0)).items),
        None,
    )
    if last is not None:
        found = listed.find(last.model) if last.model else None
        model = found.name if found and found.chat else first.name if first else last.model
        if model:
            return redirect(_chat_url(model, last.id))
    if first is not None:
        return redirect(_chat_url(first.name))
    return _render_chat(request, page, listed, model="")


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
    return _render_chat(request, page, listed, model=model, conversation_id=_conversation_id(c))


def _render_chat(
    request: Request,
    page: Page,
    listed: ModelList,
    *,
    model: str,
    conversation_id: int | None = None,
) -> Response:
    current = listed.entry(model) if model else None
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
        unlisted_vision=current.vision if current else name_takes_images(name),
        conversation_id=conversation_id,
    )
