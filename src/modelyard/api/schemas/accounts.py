"""Request and response bodies of the app API (per entity: Create / Public)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from modelyard.accounts.email_addresses import EVERY_SPECIAL_USE_DOMAIN, InvalidEmail, check_email
from modelyard.security.passwords import MIN_PASSWORD_LENGTH

__all__ = [
    "ApiTokenCreate",
    "ApiTokenCreated",
    "ApiTokenPublic",
    "LoginRequest",
    "LoginResponse",
    "UserCreate",
    "UserPublic",
]


def _email_syntax(value: str) -> str:
    try:
        return check_email(value, special_use_domains=EVERY_SPECIAL_USE_DOMAIN)
    except InvalidEmail as exc:
        raise ValueError(str(exc)) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Strict):
    #: Its syntax is checked here; the route then checks its domain against the
    #: special-use domains the settings accept (``registration_special_use_domains``).
    email: Annotated[str, AfterValidator(_email_syntax)] = Field(max_length=320)
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)
    full_name: str | None = Field(default=None, max_length=200)


class LoginRequest(_Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str | None
    is_active: bool
    is_staff: bool
    has_subscription: bool
    trial_ends_at: datetime | None
    created_at: datetime


class LoginResponse(BaseModel):
    user: UserPublic
    #: Send it as ``X-CSRF-Token`` with every cookie-authenticated request that changes state.
    csrf_token: str


class ApiTokenCreate(_Strict):
    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = None


class ApiTokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    display_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    #: The token itself; it is shown only in this response.
    token: str
