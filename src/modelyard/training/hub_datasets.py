"""Training datasets from the Hugging Face Hub: ``hub://owner/name[:split]`` (``train``
when no split is named), fetched with the ``datasets`` library and the user's own token.

A fetched split is stored like an upload (checked within the same limits, owned by the
user, named by its ``hub://`` reference). The fetch runs in a process of its own
(:mod:`modelyard.training.hub_fetch`) that sees only the user's token: none of the server's
(``HF_TOKEN``, a stored login) and no cache another user's fetch filled, so a private
dataset reaches only users whose token may read it. Three refusals, as for local models:
:class:`HubDatasetNotFoundError` (404), and :class:`HubDatasetUnauthorizedError` — 401
when no token was given, 403 when the token given has no access.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import TrainingDataset, User
from modelyard.errors import (
    BadGatewayError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from modelyard.training.bounds import UploadLimits
from modelyard.training.uploads import datasets_dir, store_dataset

__all__ = [
    "HUB_PREFIX",
    "HubDatasetNotFoundError",
    "HubDatasetRef",
    "HubDatasetUnauthorizedError",
    "fetch_split",
    "import_hub_dataset",
]

HUB_PREFIX = "hub://"
_REF = re.compile(
    r"^hub://(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96})(?::(?P<split>[\w.-]{1,64}))?$"
)
#: Seconds a fetch may take (the dataset info, the download and the conversion).
FETCH_TIMEOUT = 600.0
#: Environment variables that would hand the fetch a token other than the user's.
_TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "HF_TOKEN_PATH")


@dataclass(frozen=True)
class HubDatasetRef:
    """One split of a Hub dataset repository."""

    repo_id: str
    split: str = "train"

    @classmethod
    def parse(cls, value: str, *, param: str = "dataset") -> HubDatasetRef:
        """``hub://owner/name[:split]``, or a 400 saying how to write one."""
        found = _REF.match(value.strip())
        if found is None:
            raise BadRequestError(
                f"{value[:200]!r} is not a Hub dataset: write hub://owner/name or "
                "hub://owner/name:split (e.g. hub://stanfordnlp/imdb:test).",
                param=param,
                code="invalid_dataset_ref",
            )
        return cls(found["repo"], found["split"] or "train")

    def __str__(self) -> str:
        return f"{HUB_PREFIX}{self.repo_id}:{self.split}"

    @property
    def filename(self) -> str:
        return f"{self.repo_id.replace('/', '__')}-{self.split}.parquet"


class HubDatasetNotFoundError(NotFoundError):
    """No such dataset or split on the Hub (404; also what a private one looks like to a
    caller the Hub does not tell)."""

    def __init__(self, ref: HubDatasetRef, detail: str = "", *, param: str = "dataset") -> None:
        super().__init__(
            f"Dataset not found on the Hub: {ref}{detail} — check the owner, the name and "
            "the split (hub://owner/name:split).",
            param=param,
            code="dataset_not_found",
        )


class HubDatasetUnauthorizedError(PermissionDeniedError):
    """The dataset is private or gated: no token given (401), or the token has no access
    (403)."""

    def __init__(self, ref: HubDatasetRef, *, has_token: bool, param: str = "dataset") -> None:
        advice = (
            "the Hugging Face token given has no access: accept the dataset's terms on its "
            "Hub page or use a token that may read it"
            if has_token
            else "give a Hugging Face token that may read it (hf_token, or use_saved with the "
            "token saved in your profile)"
        )
        super().__init__(
            f"Unauthorized: {ref} is private or gated; {advice}.",
            param=param,
            code="dataset_token_refused" if has_token else "dataset_token_required",
        )
        self.status_code = 403 if has_token else 401  # type: ignore[misc]


def _environment(home: Path, endpoint: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _TOKEN_VARIABLES}
    env |= {
        "HF_HOME": str(home / "home"),
        "HF_DATASETS_CACHE": str(home / "cache"),
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    return env


async def _run_fetch(
    request: dict[str, Any], env: dict[str, str], timeout: float
) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelyard.training.hub_fetch",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        stdout, _ = await asyncio.wait_for(
            process.communicate((json.dumps(request) + "\n").encode()), timeout
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return {"outcome": "timeout"}
    lines = stdout.decode(errors="replace").strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {}
    return result if isinstance(result, dict) else {}


async def fetch_split(
    ref: HubDatasetRef,
    out: Path,
    *,
    token: str | None,
    endpoint: str | None,
    max_bytes: int,
    param: str = "dataset",
    timeout: float = FETCH_TIMEOUT,
) -> int:
    """Write ``ref`` to the Parquet file ``out``; its row count. Raises the three refusals,
    a 400 for a dataset over ``max_bytes``, 502/503 when the Hub fails or is too slow."""
    with tempfile.TemporaryDirectory(prefix="modelyard-hub-") as home:
        request = {
            "repo_id": ref.repo_id,
            "split": ref.split,
            "token": token,
            "out": str(out),
            "cache_dir": str(Path(home) / "cache"),
            "max_bytes": max_bytes,
        }
        result = await _run_fetch(request, _environment(Path(home), endpoint), timeout)
    outcome = result.get("outcome")
    if outcome == "fetched":
        return int(result.get("rows", 0))
    if outcome == "not_found":
        raise HubDatasetNotFoundError(ref, str(result.get("detail", "")), param=param)
    if outcome == "unauthorized":
        raise HubDatasetUnauthorizedError(ref, has_token=bool(token), param=param)
    if outcome == "too_large":
        raise BadRequestError(
            f"{ref} has {int(result.get('size', 0)) / 2**20:.0f} MiB of data files; this server "
            f"takes datasets of up to {max_bytes / 2**20:.0f} MiB (MODELYARD_DATASET_MAX_BYTES). "
            "Choose a smaller split, or upload a sample of it.",
            param=param,
            code="dataset_too_large",
        )
    if outcome == "timeout":
        raise ServiceUnavailableError(
            f"Fetching {ref} took longer than {timeout:.0f} s; try again later or upload the file.",
            param=param,
            code="hub_timeout",
        )
    detail = result.get("detail") or "the fetch ended without an answer"
    raise BadGatewayError(f"Could not fetch {ref}: {detail}.", param=param, code="hub_fetch_failed")


async def import_hub_dataset(
    session: AsyncSession,
    ref: HubDatasetRef,
    *,
    user: User | None,
    token: str | None,
    data_dir: Path,
    endpoint: str | None,
    limits: UploadLimits,
    task: str | None = None,
    name: str | None = None,
    param: str = "dataset",
) -> TrainingDataset:
    """Fetch ``ref`` with ``token`` and store it as ``user``'s dataset (checked for ``task``
    within ``limits``, like an upload; nothing is kept when it is refused)."""
    directory = datasets_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    staged = directory / f".hub-{os.urandom(8).hex()}.parquet"
    try:
        await fetch_split(
            ref, staged, token=token, endpoint=endpoint, max_bytes=limits.max_bytes, param=param
        )
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return await store_dataset(
        session,
        staged=staged,
        filename=ref.filename,
        data_dir=data_dir,
        user=user,
        name=name or str(ref),
        task=task,
        limits=limits,
    )
