"""The signed-in user's profile and their own provider keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, status

from modelyard.api.deps import CurrentUser, SessionDep, refresh_gateway_caches
from modelyard.api.schemas.accounts import UserPublic
from modelyard.api.schemas.keys import UserKeyUpdate, UserProfile
from modelyard.errors import BadRequestError, NotFoundError
from modelyard.providers.key_format import InvalidKeyFormat
from modelyard.providers.user_keys import delete_user_key, set_user_key, user_key_kinds

router = APIRouter(
    prefix="/v2/users/me", tags=["profile"], dependencies=[Depends(refresh_gateway_caches)]
)


@router.get("")
async def profile(user: CurrentUser, session: SessionDep) -> UserProfile:
    """The user, with ``has_<provider>_key`` flags."""
    kinds = await user_key_kinds(session, user=user)
    flags = {
        f"has_{kind}_key": kind in kinds
        for kind in ("openai", "anthropic", "google", "groq", "huggingface")
    }
    return UserProfile(**UserPublic.model_validate(user).model_dump(), **flags)


@router.patch("/api-key")
async def set_key(body: UserKeyUpdate, user: CurrentUser, session: SessionDep) -> UserProfile:
    """Store (or replace) the user's key for one provider, encrypted; never shown again."""
    try:
        await set_user_key(session, user=user, provider=body.provider, api_key=body.api_key)
    except InvalidKeyFormat as exc:
        raise BadRequestError(str(exc), param="api_key", code="invalid_key_format") from None
    return await profile(user, session)


@router.delete("/api-key", status_code=status.HTTP_204_NO_CONTENT)
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
