"""Training datasets: upload (CSV, JSONL, Parquet; multipart), import from the Hub
(``POST /v2/datasets/hub``: ``hub://owner/name[:split]`` with your token), list, show.

An upload is validated as a whole before anything is kept: a bad file is a 400 listing
its problems with line numbers (``error.issues``), and leaves no record and no file. A
file over the server's limits (``MODELYARD_DATASET_MAX_ROWS``, ``…_MAX_BYTES``) is a 400
naming the limit, found from a Parquet file's metadata or while the file is streamed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from modelyard.api.deps import CurrentUser, SessionDep, SettingsDep
from modelyard.api.uploads import save_upload
from modelyard.training.bounds import UploadLimits
from modelyard.training.hub_datasets import HubDatasetRef, import_hub_dataset
from modelyard.training.jobs import get_dataset, list_datasets
from modelyard.training.keys import JobKeys, job_secrets
from modelyard.training.tasks import TASK_NAMES, get_task
from modelyard.training.uploads import stage_path, store_dataset

__all__ = ["DatasetPublic", "HubImport", "router"]

router = APIRouter(prefix="/v2/datasets", tags=["training"])


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    format: str
    #: ``classification``, ``chat`` or ``instruction``.
    kind: str
    sha256: str
    size_bytes: int
    num_examples: int
    columns: list[Any]
    labels: list[Any] | None
    created_at: datetime


@router.post("", status_code=201)
async def upload_dataset(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="A .csv, .jsonl or .parquet file")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    task: Annotated[
        str | None, Form(description=f"{' or '.join(TASK_NAMES)}: check for it")
    ] = None,
) -> DatasetPublic:
    """Validate and keep a training file; 400 with every problem found when it is unusable."""
    if task is not None:
        get_task(task)
    filename = file.filename or ""
    data_dir = settings.data_dir.resolve()
    staged = await save_upload(file, stage_path(data_dir, filename))
    dataset = await store_dataset(
        session,
        staged=staged,
        filename=filename,
        data_dir=data_dir,
        user=user,
        name=name,
        task=task,
        limits=UploadLimits.from_settings(settings),
    )
    return DatasetPublic.model_validate(dataset)


class HubImport(BaseModel):
    """A split of a Hub dataset to fetch with your token and keep as your dataset."""

    model_config = ConfigDict(extra="forbid")

    #: ``hub://owner/name`` or ``hub://owner/name:split`` (``train`` by default).
    source: str = Field(max_length=300)
    name: str | None = Field(default=None, max_length=200)
    #: Check the data for this task.
    task: str | None = None
    #: Your Hugging Face token, for a private or gated dataset (used for this fetch only).
    hf_token: SecretStr | None = None
    #: Use the token saved in your profile when none is given here.
    use_saved: bool = False


@router.post("/hub", status_code=201)
async def import_from_hub(
    body: HubImport, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> DatasetPublic:
    """Fetch a Hub dataset's split and keep it like an upload: 404 no such dataset or
    split, 401 a private or gated one without a token, 403 a token without access, 400
    data that does not suit (every problem listed) or is over the server's limits."""
    ref = HubDatasetRef.parse(body.source, param="source")
    if body.task is not None:
        get_task(body.task)
    keys = JobKeys(hf_token=body.hf_token, use_saved=body.use_saved)
    secrets = await job_secrets(session, user, keys, param_prefix="")
    dataset = await import_hub_dataset(
        session,
        ref,
        user=user,
        token=secrets.hf_token,
        data_dir=settings.data_dir.resolve(),
        endpoint=settings.hf_endpoint,
        limits=UploadLimits.from_settings(settings),
        task=body.task,
        name=body.name,
        param="source",
    )
    return DatasetPublic.model_validate(dataset)


@router.get("")
async def list_all(user: CurrentUser, session: SessionDep) -> dict[str, list[DatasetPublic]]:
    """Your datasets (staff: everyone's), newest first."""
    return {"data": [DatasetPublic.model_validate(d) for d in await list_datasets(session, user)]}


@router.get("/{dataset_id}")
async def show(dataset_id: int, user: CurrentUser, session: SessionDep) -> DatasetPublic:
    return DatasetPublic.model_validate(await get_dataset(session, dataset_id, user))
