"""The signed-in user's profile, their own provider keys, password and sessions.

``/v2/users/me…`` is the profile and keys; ``/v2/me/password`` changes the password (the
other web sessions end, this one stays) and ``/v2/me/sessions/revoke`` signs out
everywhere (every web session, this one too; API tokens only when asked, since programs
use them). Both take effect on the next request.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from modelyard.accounts.api_tokens import revoke_all_api_tokens
from modelyard.accounts.web_sessions import end_user_sessions
from modelyard.api.deps import (
    CurrentCaller,
    CurrentUser,
    SessionDep,
    SettingsDep,
    refresh_gateway_caches,
)
from modelyard.api.password_change import PasswordChange, change_own_password
from modelyard.api.schemas.accounts import UserPublic
from modelyard.api.schemas.keys import UserKeyUpdate, UserProfile
from modelyard.api.session_cookies import clear_session_cookies
from modelyard.conversations.settings import (
    MAX_PROMPT_CHARS,
    custom_instructions,
    set_custom_instructions,
)
from modelyard.errors import BadRequestError, NotFoundError
from modelyard.providers.key_format import InvalidKeyFormat
from modelyard.providers.user_keys import delete_user_key, set_user_key, user_key_kinds

__all__ = ["SessionsRevoke", "router"]

router = APIRouter(tags=["profile"])
_KEYS = [Depends(refresh_gateway_caches)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PasswordChanged(BaseModel):
    #: The other web sessions of the account that were signed out.
    sessions_ended: int


class SessionsRevoke(_Strict):
    #: Revoke every personal API token as well (programs using them stop working).
    revoke_api_tokens: bool = False


class SessionsRevoked(BaseModel):
    sessions_ended: int
    api_tokens_revoked: int


@router.post("/v2/me/password")
async def password(
    body: PasswordChange, request: Request, session: SessionDep, caller: CurrentCaller
) -> PasswordChanged:
    """Change the password; every other web session of the account is signed out."""
    ended = await change_own_password(request, session, caller, body)
    return PasswordChanged(sessions_ended=ended)


@router.post("/v2/me/sessions/revoke")
async def revoke_sessions(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    caller: CurrentCaller,
    body: SessionsRevoke | None = None,
) -> SessionsRevoked:
    """Sign out everywhere: end every web session of the account (this one too), and
    with ``revoke_api_tokens`` revoke every API token."""
    body = body or SessionsRevoke()
    ended = await end_user_sessions(session, user_id=caller.user.id)
    revoked = 0
    if body.revoke_api_tokens:
        revoked = await revoke_all_api_tokens(session, user_id=caller.user.id)
    if caller.web_session is not None:
        clear_session_cookies(response, settings)
    return SessionsRevoked(sessions_ended=ended, api_tokens_revoked=revoked)


@router.get("/v2/users/me", dependencies=_KEYS)
async def profile(user: CurrentUser, session: SessionDep) -> UserProfile:
    """The user, with ``has_<provider>_key`` flags."""
    kinds = await user_key_kinds(session, user=user)
    flags = {
        f"has_{kind}_key": kind in kinds
        for kind in ("openai", "anthropic", "google", "groq", "huggingface")
    }
    return UserProfile(
        **UserPublic.model_validate(user).model_dump(),
        **flags,
        custom_instructions=await custom_instructions(session, user_id=user.id),
    )


class CustomInstructions(BaseModel):
    """The user's default system prompt (empty: none)."""

    model_config = ConfigDict(extra="forbid")

    custom_instructions: str = Field(max_length=MAX_PROMPT_CHARS)


@router.put("/v2/users/me/custom-instructions", dependencies=_KEYS)
async def put_custom_instructions(
    body: CustomInstructions, user: CurrentUser, session: SessionDep
) -> UserProfile:
    """Set the system prompt of every conversation that has none of its own (empty
    clears it); it applies from the next turn on."""
    await set_custom_instructions(session, user_id=user.id, text=body.custom_instructions)
    return await profile(user, session)


@router.patch("/v2/users/me/api-key", dependencies=_KEYS)
async def set_key(body: UserKeyUpdate, user: CurrentUser, session: SessionDep) -> UserProfile:
    """Store (or replace) the user's key for one provider, encrypted; never shown again."""
    try:
        await set_user_key(session, user=user, provider=body.provider, api_key=body.api_key)
    except InvalidKeyFormat as exc:
        raise BadRequestError(str(exc), param="api_key", code="invalid_key_format") from None
    return await profile(user, session)


@router.delete("/v2/users/me/api-key", status_code=status.HTTP_204_NO_CONTENT, dependencies=_KEYS)
async def remove_key(
    user: CurrentUser, session: SessionDep, provider: str = Query(max_length=40)
) -> None:
    """Remove the user's key for ``provider``."""
    try:
        removed = await delete_user_key(session, user=user, provider=provider)
    except InvalidKeyFormat as exc:
        raise BadRequestError(str(exc), param="provider") from None
    if not removed:
        raise NotFoundError(f"You have no {provider} key stored.", param="provider")
