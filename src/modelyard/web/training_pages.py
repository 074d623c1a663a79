"""The training pages.

``/training``
    Upload a dataset and see its validation, choose the task, base model and
    hyperparameters (with advice, applied in one click), then **Start training** opens the
    API keys dialog; the user's datasets and jobs are listed (``static/training.js``).
``/training/jobs/{id}``
    One job, live through its event stream: progress, loss curve, ETA, events, Cancel,
    the Hub push, then "Try it" (``static/training_job.js``). Another user's job is a 404.

Both pages are shells around the API (``/v2/datasets``, ``/v2/training/…``); keys typed in
the dialog go to ``POST /v2/training/jobs`` in the request body and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.api.deps import OptionalCaller, SessionDep, app_state
from modelyard.config import Settings
from modelyard.db.models import LlmModel, TrainingDataset, User
from modelyard.errors import NotFoundError
from modelyard.providers.kinds import ProviderKind, kind_info
from modelyard.providers.user_keys import user_key_kinds
from modelyard.training import jobs
from modelyard.training.models import job_model, list_visible
from modelyard.training.tasks import TASKS, TrainingTask, get_task
from modelyard.web.catalog import load_catalog
from modelyard.web.rendering import Page, render, sign_in_redirect, signed_in

__all__ = ["BaseChoice", "base_choices", "router", "task_catalog", "try_it_href"]

router = APIRouter(include_in_schema=False)

#: The settings of a job shown on its page, in this order, with their labels.
SHOWN_SETTINGS = (
    ("epochs", "Epochs"),
    ("max_steps", "Max steps"),
    ("batch_size", "Batch size"),
    ("learning_rate", "Learning rate"),
    ("max_length", "Max length"),
    ("method", "Method"),
    ("warmup_ratio", "Warm-up ratio"),
    ("weight_decay", "Weight decay"),
    ("eval_fraction", "Eval fraction"),
    ("logging_steps", "Logging steps"),
    ("checkpoint_steps", "Checkpoint steps"),
)


@dataclass(frozen=True)
class BaseChoice:
    """A base model offered in the form's list (the user may type any other)."""

    name: str
    note: str


async def base_choices(
    session: AsyncSession, user: User, settings: Settings
) -> dict[str, list[BaseChoice]]:
    """Base models per task: its built-in default, the trained models ``user`` may use and
    the local models an admin offers in the catalog (of the task's model task), and its Hub
    suggestions where ``user`` may make the server download them (staff, or
    ``MODELYARD_LOCAL_HUB_DOWNLOADS``)."""
    local = [(row.name, row.task, "trained here") for row in await list_visible(session, user)]
    offered = await session.scalars(
        select(LlmModel)
        .where(
            LlmModel.provider_kind == ProviderKind.LOCAL.value,
            LlmModel.is_active.is_(True),
            LlmModel.task.in_(sorted({task.model_task for task in TASKS.values()})),
        )
        .order_by(LlmModel.model_id)
    )
    local += [(row.model_id, row.task, "offered by your admin") for row in offered]
    downloads = user.is_staff or settings.local_hub_downloads
    return {task.name: _bases_for(task, local, downloads=downloads) for task in TASKS.values()}


def _bases_for(
    task: TrainingTask, local: list[tuple[str, str, str]], *, downloads: bool
) -> list[BaseChoice]:
    choices = [BaseChoice(task.default_base, task.default_base_note)] if task.default_base else []
    choices += [
        BaseChoice(name, note)
        for name, model_task, note in local
        if model_task == task.model_task and name != task.default_base
    ]
    if downloads:
        shown = {choice.name for choice in choices}
        choices += [
            BaseChoice(name, note) for name, note in task.hub_suggestions if name not in shown
        ]
    return choices


def task_catalog() -> str:
    """The tasks as JSON for the training page's script (labels, dataset kinds, methods)."""
    return json.dumps([task.describe() for task in TASKS.values()], separators=(",", ":"))


async def _advisors(
    request: Request, session: AsyncSession, page: Page, saved: set[str]
) -> list[BaseChoice]:
    """Who may write the advice: the rules, Groq with the saved key, or a usable chat model."""
    advisors = [BaseChoice("", "Built-in rules (no key needed)")]
    if "groq" in saved:
        advisors.append(BaseChoice("groq:saved", "Groq, with the key saved in your profile"))
    catalog = await load_catalog(
        session, user=page.user, system_keys=app_state(request).system_keys
    )
    advisors += [
        BaseChoice(model.name, f"{model.display_name} · {model.provider_label} (metered)")
        for model in catalog
        if model.usable and model.chat
    ]
    return advisors


@router.get("/training", response_model=None)
async def training_page(request: Request, caller: OptionalCaller, session: SessionDep) -> Response:
    """Datasets, the job form with advice and the keys dialog, and the jobs list."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    saved = await user_key_kinds(session, user=page.user)
    return render(
        request,
        "training.html",
        page=page,
        nav="training",
        tasks=list(TASKS.values()),
        task_catalog=task_catalog(),
        bases=await base_choices(session, page.user, app_state(request).settings),
        advisors=await _advisors(request, session, page, saved),
        saved_keys=sorted(saved & {"huggingface", "groq"}),
        hf=kind_info(ProviderKind.HUGGINGFACE),
        groq=kind_info(ProviderKind.GROQ),
    )


def try_it_href(task: str, output_name: str) -> str | None:
    """The chat page of a trained chat model (``None`` for classifiers: they get a box)."""
    if get_task(task).model_task != "chat":
        return None
    return f"/language-models/local/{quote(output_name, safe='')}"


def _job_id(value: str) -> int | None:
    if len(value) > 10 or not (value.isascii() and value.isdigit()):
        return None  # (more than 4300 digits would not even convert)
    number = int(value)
    return number if 0 < number < 2**31 else None


def _missing(request: Request, page: Page, value: str) -> Response:
    return render(
        request,
        "training_missing.html",
        page=page,
        nav="training",
        status_code=404,
        job_ref=value[:40],
    )


@router.get("/training/jobs/{job_id}", response_model=None)
async def job_page(
    job_id: str, request: Request, caller: OptionalCaller, session: SessionDep
) -> Response:
    """One job, live; a 404 page for a job that is not the user's (or does not exist)."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    number = _job_id(job_id)
    if number is None:
        return _missing(request, page, job_id)
    try:
        job = await jobs.get_job(session, number, page.user)
    except NotFoundError:
        return _missing(request, page, job_id)
    dataset = await session.get(TrainingDataset, job.dataset_id) if job.dataset_id else None
    config: dict[str, Any] = job.config or {}
    task = get_task(job.task)
    chosen: dict[str, Any] = config.get("recommended") or {}
    search: dict[str, Any] | None = config.get("search")
    searched = set((search or {}).get("chosen") or {})
    settings = [
        (
            label,
            config[key],
            (chosen.get(key) or {}).get("reason"),
            "Chosen by the search" if key in searched else "Chosen for the data",
        )
        for key, label in SHOWN_SETTINGS
        if config.get(key) is not None and (key != "method" or len(task.methods) > 1)
    ]
    return render(
        request,
        "training_job.html",
        page=page,
        nav="training",
        job=job,
        task=task,
        dataset=dataset,
        settings=settings,
        search=search,
        try_it=try_it_href(job.task, job.output_name),
        trained=await job_model(session, job),
    )
