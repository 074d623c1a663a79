"""The signed-in user's own provider keys (write-only) and profile flags."""

from __future__ import annotations

from pydantic import Field

from modelyard.api.schemas.accounts import UserPublic, _Strict

__all__ = ["UserKeyUpdate", "UserProfile"]


class UserKeyUpdate(_Strict):
    provider: str = Field(min_length=1, max_length=40)
    api_key: str = Field(min_length=1, max_length=500)


class UserProfile(UserPublic):
    """The user with one flag per provider key; key values are never returned."""

    has_openai_key: bool
    has_anthropic_key: bool
    has_google_key: bool
    has_groq_key: bool
    has_huggingface_key: bool
    #: The user's default system prompt for conversations without their own.
    custom_instructions: str | None = None
