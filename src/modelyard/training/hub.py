"""Push a trained model to the Hugging Face Hub (``huggingface_hub``'s own client).

The repository is created private unless asked otherwise (an existing one of the token's
owner is reused), the model folder is uploaded in one commit, and the model card
(``README.md``, written by :func:`~modelyard.training.outputs.save_model`) goes with it.
A failure never loses the local model: :func:`push_model` reports it as a
:class:`HubPushError` whose message says why and what to do, and never holds the token.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import TrainingJob
from modelyard.errors import ConflictError
from modelyard.training.models import job_model

__all__ = [
    "HubPushError",
    "PushedModel",
    "default_repo_id",
    "push_model",
    "push_outcome",
    "push_trained_model",
]


class HubPushError(RuntimeError):
    """The push failed; the message says why (the token is never part of it)."""


@dataclass(frozen=True)
class PushedModel:
    repo_id: str
    url: str
    private: bool
    commit: str | None


def default_repo_id(owner: str, output_name: str) -> str:
    """``owner/output_name``: where a model goes when no repository is named."""
    return f"{owner}/{output_name}"


def _explain(exc: Exception, repo_id: str | None) -> str:
    from huggingface_hub.errors import HfHubHTTPError

    target = f"repository {repo_id}" if repo_id else "the Hub"
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        server = (exc.server_message or "").strip().splitlines()
        detail = f" ({server[0][:300]})" if server else ""
        if status == 401:
            return (
                "the Hugging Face token was refused (401): create a token with write access "
                "at https://huggingface.co/settings/tokens"
            )
        if status == 403:
            return (
                f"the token may not write to {target} (403){detail}: use a token with write "
                "access, or a repository under your own name"
            )
        return f"the Hub answered {status} for {target}{detail}"
    if isinstance(exc, OSError | TimeoutError):
        return f"the Hub could not be reached: {type(exc).__name__}"
    return f"{type(exc).__name__} while pushing to {target}"


def push_model(
    folder: Path,
    *,
    token: str,
    output_name: str,
    repo_id: str | None = None,
    private: bool = True,
    endpoint: str | None = None,
) -> PushedModel:
    """Create (or reuse) the repository and upload ``folder``; raises :class:`HubPushError`."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    try:
        if repo_id is None:
            repo_id = default_repo_id(str(api.whoami()["name"]), output_name)
        repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            commit_message=f"Upload {output_name}, trained with modelyard",
        )
    except Exception as exc:
        raise HubPushError(_explain(exc, repo_id)) from None
    return PushedModel(
        repo_id=repo_id,
        url=str(repo),
        private=private,
        commit=getattr(commit, "oid", None),
    )


async def push_trained_model(
    session: AsyncSession,
    job: TrainingJob,
    data_dir: Path,
    token: str,
    *,
    repo_id: str | None,
    private: bool,
    endpoint: str | None,
) -> dict[str, Any]:
    """Push a succeeded job's saved model now; the outcome, as stored in ``hub_push``.

    409 when the job has not succeeded or its model is gone. The folder pushed is the one
    the job's model record names (never a folder found by name)."""
    model = await job_model(session, job)
    folder = data_dir / model.path if model is not None else None
    if job.state != "succeeded" or folder is None or not folder.is_dir():
        raise ConflictError(
            f"Job {job.id} has no trained model to push (state {job.state}); push a job "
            "that has succeeded.",
            code="nothing_to_push",
        )
    return await asyncio.to_thread(
        push_outcome,
        folder,
        token=token,
        output_name=job.output_name,
        repo_id=repo_id,
        private=private,
        endpoint=endpoint,
    )


def push_outcome(
    folder: Path,
    *,
    token: str,
    output_name: str,
    repo_id: str | None,
    private: bool,
    endpoint: str | None,
) -> dict[str, Any]:
    """Push ``folder`` and describe the outcome as a job's ``hub_push`` (never raises)."""
    outcome: dict[str, Any] = {"repo_id": repo_id, "private": private}
    try:
        pushed = push_model(
            folder,
            token=token,
            output_name=output_name,
            repo_id=repo_id,
            private=private,
            endpoint=endpoint,
        )
    except HubPushError as exc:
        return outcome | {"state": "failed", "error": f"{exc}; the model is kept locally"}
    return outcome | {"state": "pushed", "repo_id": pushed.repo_id, "url": pushed.url}
