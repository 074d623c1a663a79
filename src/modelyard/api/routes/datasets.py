"""Training datasets: upload (CSV, JSONL, Parquet; multipart), list, show.

An upload is validated as a whole before anything is kept: a bad file is a 400 listing
its problems with line numbers (``error.issues``), and leaves no record and no file. A
file over the server's limits (``MODELYARD_DATASET_MAX_ROWS``, ``…_MAX_BYTES``) is a 400
naming the limit, found from a Parquet file's metadata or while the file is streamed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, ConfigDict

from modelyard.api.deps import CurrentUser, SessionDep, SettingsDep
from modelyard.api.uploads import save_upload
from modelyard.training.bounds import UploadLimits
from modelyard.training.jobs import get_dataset, list_datasets
from modelyard.training.tasks import TASK_NAMES, get_task
from modelyard.training.uploads import stage_path, store_dataset

__all__ = ["DatasetPublic", "router"]

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


@router.get("")
async def list_all(user: CurrentUser, session: SessionDep) -> dict[str, list[DatasetPublic]]:
    """Your datasets (staff: everyone's), newest first."""
    return {"data": [DatasetPublic.model_validate(d) for d in await list_datasets(session, user)]}


@router.get("/{dataset_id}")
async def show(dataset_id: int, user: CurrentUser, session: SessionDep) -> DatasetPublic:
    return DatasetPublic.model_validate(await get_dataset(session, dataset_id, user))
