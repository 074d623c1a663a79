"""Request and response bodies of the app API (per entity: Create / Public)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Strict):
    email: EmailStr
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
