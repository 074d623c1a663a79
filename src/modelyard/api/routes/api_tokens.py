"""Personal API tokens of the signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from modelyard.accounts.api_tokens import create_api_token, list_api_tokens, revoke_api_token
from modelyard.api.deps import CurrentUser, SessionDep, app_state
from modelyard.api.schemas.accounts import ApiTokenCreate, ApiTokenCreated, ApiTokenPublic
from modelyard.db.types import utcnow
from modelyard.errors import BadRequestError, NotFoundError

router = APIRouter(prefix="/v2/tokens", tags=["api tokens"])


@router.get("")
async def list_tokens(user: CurrentUser, session: SessionDep) -> list[ApiTokenPublic]:
    """The user's tokens, newest first (never the token values)."""
    return [ApiTokenPublic.model_validate(t) for t in await list_api_tokens(session, user=user)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_token(
    body: ApiTokenCreate, user: CurrentUser, session: SessionDep
) -> ApiTokenCreated:
    """Create a token; its value is in this response only."""
    if body.expires_at is not None and (
        body.expires_at.tzinfo is None or body.expires_at <= utcnow()
    ):
        raise BadRequestError(
            "expires_at must be a future time with a timezone, e.g. 2030-01-01T00:00:00Z.",
            param="expires_at",
        )
    record, token = await create_api_token(
        session, user=user, name=body.name, expires_at=body.expires_at
    )
    return ApiTokenCreated(**ApiTokenPublic.model_validate(record).model_dump(), token=token)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(
    token_id: int, request: Request, user: CurrentUser, session: SessionDep
) -> None:
    """Revoke one of the user's tokens; it stops working at once."""
    if not await revoke_api_token(session, user=user, token_id=token_id):
        raise NotFoundError(f"No live API token with id {token_id} for this account.")
    app_state(request).token_cache.discard_where(lambda _digest, record: record.id == token_id)
