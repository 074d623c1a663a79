"""Staff-only user listing (the admin panel comes with its own views)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from modelyard.api.deps import SessionDep, StaffUser
from modelyard.api.schemas.accounts import UserPublic
from modelyard.db.models import User

router = APIRouter(prefix="/v2/users", tags=["users"])


@router.get("")
async def list_users(_staff: StaffUser, session: SessionDep) -> list[UserPublic]:
    """Every account, oldest first."""
    result = await session.execute(select(User).order_by(User.id))
    return [UserPublic.model_validate(user) for user in result.scalars()]
