"""Trained models as records: registered when a job succeeds, listed for whoever may see
them, shared or made private again.

A model is its owner's (and staff's) until the owner shares it with ``everyone``; staff
may change any model's visibility. Someone else's private model is a 404 like a model that
does not exist (:mod:`modelyard.local.access` answers every lookup by name the same way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import TrainedModel, TrainingJob, User
from modelyard.errors import NotFoundError
from modelyard.local.access import LocalCaller, visible_trained_models
from modelyard.training.outputs import model_folder
from modelyard.training.tasks import get_task

__all__ = [
    "VISIBILITIES",
    "Visibility",
    "get_visible",
    "job_model",
    "list_visible",
    "name_in_use",
    "register",
    "set_visibility",
]

Visibility = Literal["private", "everyone"]
VISIBILITIES: tuple[Visibility, ...] = ("private", "everyone")


def _owned_by(owner_id: int | None) -> ColumnElement[bool]:
    if owner_id is None:
        return TrainedModel.owner_id.is_(None)
    return TrainedModel.owner_id == owner_id


def _task(job: TrainingJob) -> str:
    return get_task(job.task).model_task


async def register(session: AsyncSession, job: TrainingJob) -> TrainedModel:
    """The record of a succeeded job's model (created, or updated for a re-run)."""
    model: TrainedModel | None = await session.scalar(
        select(TrainedModel).where(_owned_by(job.user_id), TrainedModel.name == job.output_name)
    )
    if model is None:
        model = TrainedModel(
            owner_id=job.user_id,
            name=job.output_name,
            visibility="private",
            path=model_folder(job.user_id, job.output_name),
        )
        session.add(model)
    model.task, model.base_model, model.job_id = _task(job), job.base_model, job.id
    return model


async def name_in_use(
    session: AsyncSession, owner_id: int | None, name: str, data_dir: Path
) -> bool:
    """Whether ``owner_id`` has a model (record or folder) named ``name``."""
    if (data_dir / model_folder(owner_id, name)).exists():
        return True
    found = await session.scalar(
        select(TrainedModel.id).where(_owned_by(owner_id), TrainedModel.name == name)
    )
    return found is not None


async def list_visible(session: AsyncSession, user: User | None) -> list[TrainedModel]:
    """The trained models ``user`` may use, its own first."""
    return list(await session.scalars(visible_trained_models(LocalCaller.of(user))))


async def get_visible(session: AsyncSession, model_id: int, user: User | None) -> TrainedModel:
    """The model ``model_id`` if ``user`` may see it, else a 404."""
    statement = visible_trained_models(LocalCaller.of(user)).where(TrainedModel.id == model_id)
    model: TrainedModel | None = await session.scalar(statement)
    if model is None:
        raise NotFoundError(
            f"No trained model {model_id}; list yours with GET /v2/models/trained.",
            param="model_id",
            code="model_not_found",
        )
    return model


async def set_visibility(
    session: AsyncSession, model_id: int, user: User, visibility: Visibility
) -> TrainedModel:
    """Share a model with everyone or make it private (its owner, or staff)."""
    model = await get_visible(session, model_id, user)
    if model.owner_id != user.id and not user.is_staff:
        raise NotFoundError(  # shared with the caller, but not theirs to change
            f"No trained model {model_id} of yours; list yours with GET /v2/models/trained.",
            param="model_id",
            code="model_not_found",
        )
    model.visibility = visibility
    await session.commit()
    await session.refresh(model)
    return model


async def job_model(session: AsyncSession, job: TrainingJob) -> TrainedModel | None:
    """The model a job produced (``None`` when it has not, or its record is gone)."""
    model: TrainedModel | None = await session.scalar(
        select(TrainedModel).where(TrainedModel.job_id == job.id)
    )
    return model
