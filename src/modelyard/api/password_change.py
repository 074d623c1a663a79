"""Changing one's own password, for the API route and the profile page alike: the current
password is checked (throttled like sign-in), and the other web sessions end."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from modelyard.accounts.errors import InvalidCredentials, WeakPassword
from modelyard.accounts.login_throttle import authenticate_throttled
from modelyard.accounts.users import change_password
from modelyard.api.deps import CurrentCaller, SessionDep, app_state, client_address
from modelyard.errors import BadRequestError

__all__ = ["PasswordChange", "change_own_password"]


class PasswordChange(BaseModel):
    """The body of a password change."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


async def change_own_password(
    request: Request, session: SessionDep, caller: CurrentCaller, body: PasswordChange
) -> int:
    """Check the current password (throttled like sign-in), set the new one and end the
    caller's other web sessions; returns how many ended. Raises 400 or 429."""
    try:
        await authenticate_throttled(
            session,
            app_state(request).login_throttle,
            email=caller.user.email,
            password=body.current_password,
            address=client_address(request),
        )
    except InvalidCredentials:
        raise BadRequestError(
            "The current password is wrong.", param="current_password", code="wrong_password"
        ) from None
    keep = caller.web_session.id if caller.web_session is not None else None
    try:
        return await change_password(
            session, user_id=caller.user.id, new_password=body.new_password, keep_session_id=keep
        )
    except WeakPassword as exc:
        raise BadRequestError(str(exc), param="new_password", code="weak_password") from None
