"""The profile page: "API Configuration" (the user's own provider keys, write-only: only
whether one is set is ever shown), personal API tokens (``static/profile.js`` calls
``/v2/users/me/api-key`` and ``/v2/tokens``), and two plain forms that work without
script: change the password (other sessions end) and sign out everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.accounts.api_tokens import revoke_all_api_tokens
from modelyard.accounts.web_sessions import end_user_sessions
from modelyard.api.deps import OptionalCaller, SessionDep, SettingsDep, app_state
from modelyard.api.password_change import PasswordChange, change_own_password
from modelyard.api.session_cookies import clear_session_cookies
from modelyard.conversations.settings import MAX_PROMPT_CHARS, custom_instructions
from modelyard.errors import BadRequestError, RateLimitError
from modelyard.providers.credentials import usable_kinds
from modelyard.providers.kinds import kind_info
from modelyard.providers.user_keys import own_key_kinds, user_key_kinds
from modelyard.security.passwords import MIN_PASSWORD_LENGTH
from modelyard.web.rendering import Page, redirect, render, sign_in_redirect, signed_in

__all__ = ["KeySlot", "router"]

router = APIRouter(include_in_schema=False)

Secret = Annotated[str, Form(max_length=256)]
#: ``?done=`` values after a form, and what the page says.
NOTICES = {"password": "Password changed. Your other sessions were signed out."}


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


async def _render_profile(
    request: Request,
    session: AsyncSession,
    page: Page,
    *,
    status_code: int = 200,
    password_errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
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
        for kind in own_key_kinds()
    ]
    context: dict[str, Any] = {
        "slots": slots,
        "password_errors": password_errors or {},
        "min_password_length": MIN_PASSWORD_LENGTH,
        "notice": notice,
        "custom_instructions": await custom_instructions(session, user_id=page.user.id) or "",
        "max_prompt_chars": MAX_PROMPT_CHARS,
    }
    return render(
        request, "profile.html", page=page, nav="profile", status_code=status_code, **context
    )


@router.get("/profile", response_model=None)
async def profile_page(
    request: Request, caller: OptionalCaller, session: SessionDep, done: str = ""
) -> Response:
    """Provider keys (only whether each is set), API tokens, password and sessions."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    return await _render_profile(request, session, page, notice=NOTICES.get(done))


@router.post("/profile/password", response_model=None)
async def password_form(
    request: Request,
    caller: OptionalCaller,
    session: SessionDep,
    current_password: Secret = "",
    new_password: Secret = "",
    confirm: Secret = "",
) -> Response:
    """Change the password (the form carries the CSRF token); errors beside the fields."""
    page = signed_in(caller)
    if page is None or caller is None:
        return sign_in_redirect(request)
    errors: dict[str, str] = {}
    status = 400
    if new_password != confirm:
        errors["confirm"] = "The two new passwords differ; type the same password twice."
    else:
        try:
            body = PasswordChange(current_password=current_password, new_password=new_password)
            await change_own_password(request, session, caller, body)
        except BadRequestError as exc:
            errors[exc.param or "new_password"] = exc.message
        except RateLimitError as exc:
            errors["current_password"], status = exc.message, 429
    if errors:
        return await _render_profile(
            request, session, page, status_code=status, password_errors=errors
        )
    return redirect("/profile?done=password")


@router.post("/profile/sessions/revoke", response_model=None)
async def sign_out_everywhere_form(
    request: Request,
    caller: OptionalCaller,
    session: SessionDep,
    settings: SettingsDep,
    revoke_api_tokens: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """End every web session of the account (this one too), tokens too when ticked."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    await end_user_sessions(session, user_id=page.user.id)
    if revoke_api_tokens:
        await revoke_all_api_tokens(session, user_id=page.user.id)
    response = redirect("/login")
    clear_session_cookies(response, settings)
    return response
