"""Job and dataset records: create, find, list, cancel, delete, and the event history.

A job's life: ``queued`` → ``validating`` → ``running`` → ``succeeded`` | ``failed`` |
``cancelled``. A queued job is cancelled at once; an active one gets
``cancel_requested`` and its runner stops the worker within seconds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.config import Settings
from modelyard.db.models import TrainingDataset, TrainingEvent, TrainingJob, User
from modelyard.db.types import utcnow
from modelyard.errors import BadRequestError, ConflictError, NotFoundError
from modelyard.local.access import LocalCaller, resolve_local
from modelyard.local.errors import ModelNotFoundError
from modelyard.training.config import TrainingConfig
from modelyard.training.gpu import check_gpu_options
from modelyard.training.models import name_in_use
from modelyard.training.tasks import get_task, tasks_offering

__all__ = [
    "ACTIVE_STATES",
    "STATES",
    "TERMINAL_STATES",
    "add_event",
    "create_job",
    "delete_job",
    "events_after",
    "get_dataset",
    "get_job",
    "gpu_available",
    "list_datasets",
    "list_jobs",
    "request_cancel",
]

ACTIVE_STATES = ("validating", "running")
TERMINAL_STATES = ("succeeded", "failed", "cancelled")
STATES = ("queued", *ACTIVE_STATES, *TERMINAL_STATES)


def gpu_available() -> bool:
    """Whether this machine has a CUDA GPU torch can use."""
    import torch

    return bool(torch.cuda.is_available())


def _visible(statement: Any, model: Any, user: User | None) -> Any:
    return statement if user is None or user.is_staff else statement.where(model.user_id == user.id)


async def get_dataset(session: AsyncSession, dataset_id: int, user: User | None) -> TrainingDataset:
    """The dataset, if ``user`` may see it (its owner or staff; ``None``: anyone)."""
    statement = _visible(
        select(TrainingDataset).where(TrainingDataset.id == dataset_id), TrainingDataset, user
    )
    dataset: TrainingDataset | None = await session.scalar(statement)
    if dataset is None:
        raise NotFoundError(
            f"No dataset {dataset_id}; list yours with GET /v2/datasets.", param="dataset_id"
        )
    return dataset


async def list_datasets(session: AsyncSession, user: User | None) -> list[TrainingDataset]:
    statement = _visible(select(TrainingDataset), TrainingDataset, user)
    return list(await session.scalars(statement.order_by(TrainingDataset.id.desc())))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.rsplit("/", 1)[-1]).strip("-.")[:40] or "model"


async def create_job(
    session: AsyncSession,
    *,
    user: User | None,
    dataset: TrainingDataset,
    config: TrainingConfig,
    settings: Settings,
    check_gpu: Any = gpu_available,
    hub: dict[str, Any] | None = None,
    advice: dict[str, Any] | None = None,
) -> TrainingJob:
    """Check ``config`` against the dataset and this machine, then queue the job.

    400: the dataset does not suit the task, no base model for SFT, GPU options this job
    cannot have (:func:`~modelyard.training.gpu.check_gpu_options`), or ``gpu`` asked
    where there is none; 404: a base model ``user`` may not use (as for one that does not
    exist); 409: the output name is taken (names are the owner's: another user's models
    never collide). ``hub`` (``repo_id``, ``private``) asks for a Hub push when the job
    succeeds; ``advice`` is kept with the job. ``user`` ``None``: the service itself.
    """
    data_dir = settings.data_dir.resolve()
    task = get_task(config.task)
    if dataset.kind not in task.kinds:
        wanted = " or ".join(task.kinds)
        raise BadRequestError(
            f"Dataset {dataset.id} holds {dataset.kind} data; task {config.task} needs {wanted} "
            "data.",
            param="task",
            code="dataset_task_mismatch",
        )
    base = config.resolved_base()
    if base is None:
        raise BadRequestError(
            f"Task {config.task} needs a base model: set base_model to {task.base_required}.",
            param="base_model",
            code="base_model_required",
        )
    check_gpu_options(config, task)
    if config.compute_type == "gpu" and not check_gpu():
        raise BadRequestError(
            "compute_type gpu: this server has no CUDA GPU (torch.cuda.is_available() is "
            "false). Use compute_type cpu, or run the server on a machine with an NVIDIA GPU "
            "and a CUDA build of torch.",
            param="compute_type",
            code="gpu_unavailable",
        )
    if config.method not in task.methods:
        offered = " and ".join(tasks_offering(config.method))
        raise BadRequestError(f"LoRA is offered for {offered} jobs only.", param="method")
    if user is not None:
        await _check_base(session, base, user, settings)
    owner_id = user.id if user else None
    if config.output_name is not None:
        await _check_name_free(session, owner_id, config.output_name, data_dir)
    job = TrainingJob(
        user_id=user.id if user else None,
        dataset_id=dataset.id,
        task=config.task,
        base_model=base,
        output_name=config.output_name or "pending",
        compute_type=config.compute_type,
        config=config.model_dump(mode="json"),
        state="queued",
        progress={},
        push_to=hub.get("repo_id") if hub else None,
        hub_push={**hub, "state": "pending"} if hub else None,
        advice=advice,
    )
    session.add(job)
    await session.flush()
    if config.output_name is None:
        job.output_name = await _free_name(
            session, owner_id, f"{_slug(base)}-{config.task}-{job.id}", data_dir
        )
        job.config = {**job.config, "output_name": job.output_name}
    session.add(TrainingEvent(job_id=job.id, kind="state", data={"state": "queued"}))
    await session.commit()
    return job


async def _check_base(session: AsyncSession, base: str, user: User, settings: Settings) -> None:
    try:
        await resolve_local(session, base, LocalCaller.of(user), settings)
    except ModelNotFoundError as error:
        error.param = "base_model"
        raise


async def _name_training(session: AsyncSession, owner_id: int | None, name: str) -> bool:
    owner = (
        TrainingJob.user_id == owner_id if owner_id is not None else TrainingJob.user_id.is_(None)
    )
    taken = await session.scalar(
        select(func.count())
        .select_from(TrainingJob)
        .where(
            owner,
            TrainingJob.output_name == name,
            TrainingJob.state.in_(("queued", *ACTIVE_STATES)),
        )
    )
    return bool(taken)


async def _check_name_free(
    session: AsyncSession, owner_id: int | None, name: str, data_dir: Path
) -> None:
    if await name_in_use(session, owner_id, name, data_dir):
        raise ConflictError(
            f"You have a trained model named {name} already; choose another output_name.",
            param="output_name",
            code="name_taken",
        )
    if await _name_training(session, owner_id, name):
        raise ConflictError(
            f"Another of your jobs is training a model named {name}; choose another output_name.",
            param="output_name",
            code="name_taken",
        )


async def _free_name(session: AsyncSession, owner_id: int | None, name: str, data_dir: Path) -> str:
    """``name``, or ``name-2``, ``name-3``… when the owner has a model of that name."""
    candidate, number = name, 1
    while await name_in_use(session, owner_id, candidate, data_dir) or await _name_training(
        session, owner_id, candidate
    ):
        number += 1
        candidate = f"{name}-{number}"
    return candidate


async def get_job(session: AsyncSession, job_id: int, user: User | None) -> TrainingJob:
    statement = _visible(select(TrainingJob).where(TrainingJob.id == job_id), TrainingJob, user)
    job: TrainingJob | None = await session.scalar(statement)
    if job is None:
        raise NotFoundError(
            f"No training job {job_id}; list yours with GET /v2/training/jobs.", param="job_id"
        )
    return job


async def list_jobs(
    session: AsyncSession, user: User | None, *, state: str | None = None, limit: int = 100
) -> list[TrainingJob]:
    statement = _visible(select(TrainingJob), TrainingJob, user)
    if state is not None:
        statement = statement.where(TrainingJob.state == state)
    return list(await session.scalars(statement.order_by(TrainingJob.id.desc()).limit(limit)))


async def add_event(
    session: AsyncSession, job_id: int, kind: str, data: dict[str, Any], step: int | None = None
) -> None:
    session.add(TrainingEvent(job_id=job_id, kind=kind, step=step, data=data))


async def events_after(
    session: AsyncSession, job_id: int, after_id: int = 0, *, kinds: tuple[str, ...] = ()
) -> list[TrainingEvent]:
    statement = select(TrainingEvent).where(
        TrainingEvent.job_id == job_id, TrainingEvent.id > after_id
    )
    if kinds:
        statement = statement.where(TrainingEvent.kind.in_(kinds))
    return list(await session.scalars(statement.order_by(TrainingEvent.id).limit(1000)))


async def request_cancel(session: AsyncSession, job: TrainingJob) -> TrainingJob:
    """Cancel a queued job now, ask the runner to stop an active one; 409 when done."""
    if job.state in TERMINAL_STATES:
        raise ConflictError(
            f"Job {job.id} has {job.state} already; there is nothing to cancel.",
            code="job_finished",
        )
    if job.state == "queued":
        result = await session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job.id, TrainingJob.state == "queued")
            .values(state="cancelled", cancel_requested=True, finished_at=utcnow())
        )
        if getattr(result, "rowcount", 0):
            await add_event(session, job.id, "state", {"state": "cancelled"})
    else:
        await session.execute(
            update(TrainingJob).where(TrainingJob.id == job.id).values(cancel_requested=True)
        )
    await session.commit()
    await session.refresh(job)
    return job


async def delete_job(session: AsyncSession, job: TrainingJob) -> None:
    """Delete a finished or queued job's record and history (the trained model stays)."""
    if job.state in ACTIVE_STATES:
        raise ConflictError(
            f"Job {job.id} is {job.state}; cancel it first (POST /v2/training/jobs/{job.id}"
            "/cancel), then delete it.",
            code="job_active",
        )
    await session.delete(job)
    await session.commit()
