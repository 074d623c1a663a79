"""Staff API for the app's settings: the default chat model (what a new chat opens with;
see :mod:`modelyard.model_list.default_chat`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from modelyard.api.deps import SessionDep, StaffUser
from modelyard.api.model_lists import model_list
from modelyard.model_list.default_chat import (
    checked_default,
    default_chat_model,
    set_default_chat_model,
)

router = APIRouter(prefix="/v2/admin/settings", tags=["admin"])


class DefaultChatModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: A chat model's name as ``GET /v1/models`` lists it; ``null``: no default.
    model: str | None = Field(max_length=300)


@router.get("/default-chat-model")
async def get_default_chat_model(_staff: StaffUser, session: SessionDep) -> DefaultChatModel:
    """The default chat model (``null``: each user's first chat model)."""
    return DefaultChatModel(model=await default_chat_model(session))


@router.put("/default-chat-model")
async def put_default_chat_model(
    body: DefaultChatModel, request: Request, staff: StaffUser, session: SessionDep
) -> DefaultChatModel:
    """Set or clear the default chat model (audited); a name that is no chat model is a
    400, one that does not exist a 404."""
    name = checked_default(await model_list(request, session, staff), body.model)
    await set_default_chat_model(session, actor=staff, model=name)
    return DefaultChatModel(model=name)
