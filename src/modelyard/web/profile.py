"""The profile page: "API Configuration" (the user's own provider keys, write-only: only
whether one is set is ever shown) and personal API tokens (``static/profile.js`` calls
``/v2/users/me/api-key`` and ``/v2/tokens``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from modelyard.api.deps import OptionalCaller, SessionDep, app_state
from modelyard.providers.credentials import usable_kinds
from modelyard.providers.kinds import kind_info
from modelyard.providers.user_keys import USER_KEY_KINDS, user_key_kinds
from modelyard.web.rendering import render, sign_in_redirect, signed_in

__all__ = ["KeySlot", "router"]

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class KeySlot:
    """One provider a user can keep a key for, and where things stand."""

    kind: str
    label: str
    key_url: str | None
    #: What keys of this provider start with (a hint, e.g. ``sk-``).
    key_prefix: str | None
    #: The user stored a key of their own.
    has_own_key: bool
    #: Usable without the user's key (an admin provider or a system key).
    shared: bool


@router.get("/profile", response_model=None)
async def profile_page(request: Request, caller: OptionalCaller, session: SessionDep) -> Response:
    """Provider keys (only whether each is set) and the API tokens section."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    own = await user_key_kinds(session, user=page.user)
    server = await usable_kinds(session, user=None, system_keys=app_state(request).system_keys)
    slots = [
        KeySlot(
            kind=kind.value,
            label=kind_info(kind).label,
            key_url=kind_info(kind).key_url,
            key_prefix=kind_info(kind).key_prefix,
            has_own_key=kind.value in own,
            shared=kind in server,
        )
        for kind in USER_KEY_KINDS
    ]
    return render(request, "profile.html", page=page, nav="profile", slots=slots)
