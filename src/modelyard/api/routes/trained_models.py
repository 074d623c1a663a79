"""Trained models (``/v2/models/trained``): the ones the caller may use, and sharing.

``GET`` lists the caller's own models and those shared with everyone (staff: all);
``PATCH …/{id}`` sets ``visibility`` (``private`` or ``everyone``) — the owner's or staff's
to change. Anyone else's private model is a 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from modelyard.api.deps import CurrentUser, SessionDep, app_state
from modelyard.db.models import TrainedModel, User
from modelyard.training import models
from modelyard.training.models import Visibility

__all__ = ["TrainedModelPublic", "VisibilityUpdate", "router"]

router = APIRouter(prefix="/v2/models/trained", tags=["training"])


class TrainedModelPublic(BaseModel):
    """A trained model as its users see it (never where it lies on disk)."""

    id: int
    #: The gateway name: ``local/<name>``.
    model: str
    name: str
    task: str
    base_model: str
    visibility: str
    #: Whether the caller owns it (and so may share it).
    owned: bool
    job_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, model: TrainedModel, user: User) -> TrainedModelPublic:
        return cls(
            id=model.id,
            model=f"local/{model.name}",
            name=model.name,
            task=model.task,
            base_model=model.base_model,
            visibility=model.visibility,
            owned=model.owner_id == user.id,
            job_id=model.job_id,
            created_at=model.created_at,
        )


class VisibilityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visibility: Visibility


@router.get("")
async def list_trained(
    user: CurrentUser, session: SessionDep
) -> dict[str, list[TrainedModelPublic]]:
    """The trained models the caller may use, its own first."""
    return {
        "data": [TrainedModelPublic.of(m, user) for m in await models.list_visible(session, user)]
    }


@router.patch("/{model_id}")
async def update_trained(
    model_id: int, body: VisibilityUpdate, request: Request, user: CurrentUser, session: SessionDep
) -> TrainedModelPublic:
    """Share a model with everyone, or make it private again."""
    model = await models.set_visibility(session, model_id, user, body.visibility)
    app_state(request).gateway.invalidate()
    return TrainedModelPublic.of(model, user)
