"""Storing a dataset: a staged file is validated, moved into place, then recorded.

A bad file leaves nothing behind (no row, no file): the staged copy is removed, and the
final file is removed again if the row cannot be written. Files are named by their
SHA-256, so the same upload twice is stored once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import TrainingDataset, User
from modelyard.training.bounds import DEFAULT_LIMITS, UploadLimits
from modelyard.training.datasets import (
    DatasetSummary,
    detect_format,
    file_sha256,
    validate_file,
)

__all__ = ["datasets_dir", "discard_dataset", "stage_path", "store_dataset"]


def datasets_dir(data_dir: Path) -> Path:
    return data_dir / "datasets"


def stage_path(data_dir: Path, filename: str) -> Path:
    """A fresh staging path for an upload of ``filename`` (the format is checked first)."""
    detect_format(filename)
    directory = datasets_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f".upload-{uuid.uuid4().hex}{Path(filename).suffix.lower()}"


def _place(
    staged: Path, filename: str, data_dir: Path, task: str | None, limits: UploadLimits
) -> _Placed:
    """Validate, hash and move the staged file (blocking; run in a thread)."""
    fmt = detect_format(filename)
    summary = validate_file(staged, fmt, task, limits)
    sha256 = file_sha256(staged)
    size = staged.stat().st_size
    final = datasets_dir(data_dir) / f"{sha256}{staged.suffix}"
    created = not final.exists()
    os.replace(staged, final)
    return _Placed(summary, sha256, size, final, created)


@dataclass
class _Placed:
    summary: DatasetSummary
    sha256: str
    size: int
    final: Path
    created: bool


async def store_dataset(
    session: AsyncSession,
    *,
    staged: Path,
    filename: str,
    data_dir: Path,
    user: User | None,
    name: str | None = None,
    task: str | None = None,
    limits: UploadLimits = DEFAULT_LIMITS,
) -> TrainingDataset:
    """Validate ``staged`` within ``limits`` (removed in every case), keep it and record it."""
    placed: _Placed | None = None
    try:
        placed = await asyncio.to_thread(_place, staged, filename, data_dir, task, limits)
        summary = placed.summary
        dataset = TrainingDataset(
            user_id=user.id if user else None,
            name=(name or Path(filename).name)[:200],
            format=summary.format,
            kind=summary.kind,
            path=str(placed.final.relative_to(data_dir)),
            sha256=placed.sha256,
            size_bytes=placed.size,
            num_examples=summary.num_examples,
            columns=summary.columns,
            labels=summary.labels,
        )
        session.add(dataset)
        await session.commit()
        return dataset
    except BaseException:
        if placed is not None and placed.created:
            await asyncio.to_thread(placed.final.unlink, missing_ok=True)
        raise
    finally:
        await asyncio.to_thread(staged.unlink, missing_ok=True)


async def discard_dataset(session: AsyncSession, dataset: TrainingDataset, data_dir: Path) -> None:
    """Remove a dataset stored moments ago for a request that then failed (its file too,
    unless another record holds the same file)."""
    dataset_id, path = dataset.id, dataset.path
    await session.rollback()
    await session.execute(delete(TrainingDataset).where(TrainingDataset.id == dataset_id))
    others = await session.scalar(
        select(func.count()).select_from(TrainingDataset).where(TrainingDataset.path == path)
    )
    await session.commit()
    if not others:
        await asyncio.to_thread((data_dir / path).unlink, missing_ok=True)
