"""Training jobs (``/v2/training/jobs``) and classification with trained models.

Create a job from a dataset and a :class:`~modelyard.training.config.TrainingConfig`;
follow it with ``GET …/{id}`` (latest progress), ``GET …/{id}/events`` (server-sent
events: ``state``, ``progress``, ``eval``, ``checkpoint``) or ``GET …/{id}/metrics``;
stop it with ``POST …/{id}/cancel``. A finished classifier answers
``POST /v2/models/{name}/classify``; a finished SFT model chats through the gateway.
``GET …/tasks`` lists the tasks a job may ask for (the training task registry).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from sqlalchemy import select

from modelyard.api.deps import CurrentUser, SessionDep, SettingsDep, app_state
from modelyard.db.models import TrainingJob
from modelyard.errors import BadRequestError
from modelyard.training import jobs
from modelyard.training.advice import AdviceResult
from modelyard.training.bounds import UploadLimits
from modelyard.training.config import TrainingConfig
from modelyard.training.hub import push_trained_model
from modelyard.training.hub_datasets import HubDatasetRef, import_hub_dataset
from modelyard.training.keys import JobKeys, job_secrets, remember_keys, request_secrets
from modelyard.training.runner import job_work_dir
from modelyard.training.service import training_service
from modelyard.training.tasks import TASKS
from modelyard.training.uploads import discard_dataset

__all__ = [
    "ClassifyRequest",
    "JobCreate",
    "JobPublic",
    "TaskPublic",
    "models_router",
    "router",
    "train_router",
]

router = APIRouter(prefix="/v2/training", tags=["training"])
models_router = APIRouter(prefix="/v2/models", tags=["training"])
#: ``POST /train``: the short form of ``POST /v2/training/jobs``.
train_router = APIRouter(tags=["training"])

#: Seconds between two looks at the event history while streaming.
STREAM_POLL = 0.5
#: A comment line is sent when nothing happened for this long.
KEEPALIVE = 15.0


class HubOptions(BaseModel):
    """Where the trained model is pushed when the job has a Hugging Face token."""

    model_config = ConfigDict(extra="forbid")

    push: bool = True
    #: ``owner/name``; by default the token owner's ``<output_name>``.
    repo_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    private: bool = True


class JobCreate(TrainingConfig):
    """The training config, the dataset to train on, and the optional keys step.

    The first front end's flat shape is accepted too: ``hf_token`` and ``groq_api_key``
    beside the config (for this job only, like ``keys``), and Hugging Face's task names
    (``text-classification``, ``text-generation``)."""

    #: An uploaded dataset (``GET /v2/datasets``)…
    dataset_id: int | None = Field(default=None, ge=1)
    #: …or a Hub dataset, ``hub://owner/name[:split]``, fetched with the job's token.
    dataset: str | None = Field(default=None, max_length=300)
    #: The keys step (omit it to train without keys and keep the model local).
    keys: JobKeys | None = None
    #: The flat shape's Hugging Face token (as ``keys.hf_token``).
    hf_token: SecretStr | None = None
    #: The flat shape's Groq key (as ``keys.groq_api_key``).
    groq_api_key: SecretStr | None = None
    hub: HubOptions = Field(default_factory=HubOptions)
    #: The advice the user saw (and maybe applied), kept with the job.
    advice: AdviceResult | None = None

    @model_validator(mode="after")
    def _one_dataset_and_one_place_per_key(self) -> JobCreate:
        if (self.dataset_id is None) == (self.dataset is None):
            raise ValueError("give dataset_id (an uploaded dataset) or dataset (hub://…), one")
        for name in ("hf_token", "groq_api_key"):
            if getattr(self, name) is not None and getattr(self.keys, name, None) is not None:
                raise ValueError(f"give {name} beside the config or in keys, not both")
        return self

    def flat_keys(self) -> JobKeys:
        return JobKeys(hf_token=self.hf_token, groq_api_key=self.groq_api_key)


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    state: str
    task: str
    base_model: str
    output_name: str
    compute_type: str
    dataset_id: int | None
    config: dict[str, Any]
    progress: dict[str, Any]
    metrics: dict[str, Any] | None
    error: str | None
    attempts: int
    cancel_requested: bool
    worker_pid: int | None
    checkpoint_path: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: The Hub push: ``state`` (pending, pushing, pushed, failed, skipped), ``repo_id``,
    #: ``private``, ``url``, ``error``; ``None`` when the job does not push.
    hub_push: dict[str, Any] | None
    advice: dict[str, Any] | None
    #: The trained model's name for the gateway, once the job has succeeded.
    model: str | None = None


class TaskPublic(BaseModel):
    """A training task a job may ask for (from the registry)."""

    name: str
    #: Other names a job may give (``text-classification``).
    aliases: list[str]
    label: str
    #: The model it trains, in a sentence.
    noun: str
    #: The dataset kinds it trains on, each with how it is shown.
    dataset_kinds: dict[str, str]
    required_columns: list[str]
    columns_help: str
    #: The metrics a finished job reports.
    metrics: list[str]
    methods: list[str]
    #: ``None``: a job must name its base model.
    default_base_model: str | None
    base_placeholder: str


def _public(job: TrainingJob) -> JobPublic:
    public = JobPublic.model_validate(job)
    public.model = job.output_name if job.state == "succeeded" else None
    return public


@train_router.post("/train", status_code=201)
@router.post("/jobs", status_code=201)
async def create_job(
    body: JobCreate, request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> JobPublic:
    """Queue a job; 400 when the dataset does not suit the task, a key is malformed or no
    GPU is available. Keys are used for this job only unless ``keys.remember`` is set.
    A Hub ``dataset`` is fetched first with the job's token (404, 401 or 403 as for
    ``POST /v2/datasets/hub``) and kept as the user's dataset, unless the job is refused."""
    config = TrainingConfig.model_validate(
        body.model_dump(include=set(TrainingConfig.model_fields))
    )
    secrets = await request_secrets(session, user, body.keys, body.flat_keys())
    hub = None
    if secrets.hf_token and body.hub.push:
        hub = {"repo_id": body.hub.repo_id, "private": body.hub.private}
    service = training_service(request.app)
    data_dir = settings.data_dir.resolve()
    if body.dataset_id is not None:
        dataset, fetched = await jobs.get_dataset(session, body.dataset_id, user), False
    else:
        dataset, fetched = (
            await import_hub_dataset(
                session,
                HubDatasetRef.parse(body.dataset or ""),
                user=user,
                token=secrets.hf_token,
                data_dir=data_dir,
                endpoint=settings.hf_endpoint,
                limits=UploadLimits.from_settings(settings),
                task=config.task,
            ),
            True,
        )
    try:
        job = await jobs.create_job(
            session,
            user=user,
            dataset=dataset,
            config=config,
            settings=settings,
            # Celery: GPU jobs wait for a GPU worker; this server needs no GPU of its own.
            check_gpu=jobs.gpu_available if service.celery is None else lambda: True,
            hub=hub,
            advice=body.advice.model_dump(mode="json") if body.advice else None,
        )
    except BaseException:
        if fetched:
            await discard_dataset(session, dataset, data_dir)
        raise
    await remember_keys(session, user, body.keys)
    service.submit(job, secrets)
    return _public(job)


@router.get("/tasks")
async def list_tasks(_user: CurrentUser) -> dict[str, list[TaskPublic]]:
    """The tasks a job may ask for: their dataset kinds, methods, metrics, default base."""
    return {"data": [TaskPublic.model_validate(task.describe()) for task in TASKS.values()]}


@router.get("/jobs")
async def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    state: Annotated[str | None, Query(description="Only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, list[JobPublic]]:
    """Your jobs (staff: everyone's), newest first."""
    return {
        "data": [_public(j) for j in await jobs.list_jobs(session, user, state=state, limit=limit)]
    }


@router.get("/jobs/{job_id}")
async def show_job(job_id: int, user: CurrentUser, session: SessionDep) -> JobPublic:
    return _public(await jobs.get_job(session, job_id, user))


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(
    job_id: int, request: Request, user: CurrentUser, session: SessionDep
) -> JobPublic:
    """Cancel: a queued job at once, a running one within seconds; 409 once finished."""
    job = await jobs.request_cancel(session, await jobs.get_job(session, job_id, user))
    training_service(request.app).wake()
    return _public(job)


@router.delete("/jobs/{job_id}", status_code=204)
async def delete_job(
    job_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Response:
    """Delete a job that is not running, with its history and checkpoints (the model stays)."""
    job = await jobs.get_job(session, job_id, user)
    await jobs.delete_job(session, job)
    shutil.rmtree(job_work_dir(settings.data_dir.resolve(), job_id), ignore_errors=True)
    return Response(status_code=204)


class PushRequest(HubOptions):
    """Push a succeeded job's model (again): a token for this call, or the saved one."""

    hf_token: SecretStr | None = None
    use_saved: bool = False


@router.post("/jobs/{job_id}/push")
async def push_job_model(
    job_id: int, body: PushRequest, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> JobPublic:
    """Push the trained model to the Hub now (after a failed or skipped push); the outcome
    is in ``hub_push``. 409 unless the job has succeeded."""
    job = await jobs.get_job(session, job_id, user)
    keys = JobKeys(hf_token=body.hf_token, use_saved=body.use_saved)
    token = (await job_secrets(session, user, keys)).hf_token
    if token is None:
        raise BadRequestError(
            "A Hugging Face token is needed to push: send hf_token, or use_saved with a "
            "token saved in your profile.",
            param="hf_token",
            code="hf_token_required",
        )
    job.hub_push = await push_trained_model(
        session, job, settings.data_dir.resolve(), token, repo_id=body.repo_id,
        private=body.private, endpoint=settings.hf_endpoint,
    )  # fmt: skip
    await session.commit()
    return _public(job)


@router.get("/jobs/{job_id}/metrics")
async def job_metrics(job_id: int, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """The loss and learning-rate history, the evaluations and the final metrics."""
    job = await jobs.get_job(session, job_id, user)
    events = await jobs.events_after(session, job_id, kinds=("progress", "eval"))
    history = [
        {k: e.data.get(k) for k in ("step", "epoch", "loss", "learning_rate", "samples_per_second")}
        for e in events
        if e.kind == "progress" and e.data.get("loss") is not None
    ]
    evaluations = [
        {"step": e.step, **e.data.get("metrics", {})} for e in events if e.kind == "eval"
    ]
    return {
        "job_id": job.id,
        "state": job.state,
        "history": history,
        "evaluations": evaluations,
        "metrics": job.metrics,
    }


def _sse(event_id: int, kind: str, data: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, kind.encode(), orjson.dumps(data))


@router.get("/jobs/{job_id}/events", response_model=None)
async def job_events(
    job_id: int,
    request: Request,
    user: CurrentUser,
    after: Annotated[int, Query(ge=0, description="Only events after this id")] = 0,
    last_event_id: Annotated[int | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events until the job finishes (resumable with ``Last-Event-ID``).

    Each look at the history uses its own short session: a long stream holds no
    database connection while it waits."""
    database = app_state(request).database
    async with database.sessions() as session:
        await jobs.get_job(session, job_id, user)
    start = max(after, last_event_id or 0)

    async def stream() -> AsyncIterator[bytes]:
        cursor, quiet = start, 0.0
        while True:
            async with database.sessions() as reader:
                events = await jobs.events_after(reader, job_id, cursor)
                state = await reader.scalar(
                    select(TrainingJob.state).where(TrainingJob.id == job_id)
                )
            for event in events:
                cursor = event.id
                data = {"step": event.step, "time": event.created_at.timestamp(), **event.data}
                yield _sse(event.id, event.kind, data)
            if state is None or (state in jobs.TERMINAL_STATES and not events):
                return
            if events:
                quiet = 0.0
            elif quiet >= KEEPALIVE:
                quiet = 0.0
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(STREAM_POLL)
            quiet += STREAM_POLL

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
    )


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: A text or a list of texts (at most 256).
    input: str | list[str] = Field(min_length=1)


@models_router.post("/{name:path}/classify")
async def classify(
    name: str, body: ClassifyRequest, request: Request, user: CurrentUser
) -> dict[str, Any]:
    """Labels for texts from a trained (or any local) sequence classifier the caller may
    use, loaded by the gateway's local model manager (a model of another task is a 400;
    an unknown one, or one the caller may not use, 404)."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if len(texts) > 256:
        raise BadRequestError("At most 256 texts per request.", param="input")
    results = await app_state(request).gateway.classify(user, name, texts)
    return {
        "object": "list",
        "model": name,
        "data": [
            {"index": i, "label": r.label, "score": r.score, "scores": r.scores}
            for i, r in enumerate(results)
        ],
    }
