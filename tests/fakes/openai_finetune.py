"""The fake OpenAI with the Files API and fine-tuning jobs, plus chat (``ChatOpenAI``).

Files: ``POST /v1/files`` (multipart ``file`` and ``purpose``), ``GET /v1/files/{id}``,
``DELETE /v1/files/{id}``. Jobs: ``POST /v1/fine_tuning/jobs``, ``GET …/{id}``,
``POST …/{id}/cancel``, ``GET …/{id}/events`` (newest first, ``limit`` and ``after``
paging, ``has_more``), in OpenAI's shapes. A job moves one step along :attr:`steps` at
each ``GET`` of it; at the end it succeeds with ``fine_tuned_model`` (then added to the
models the chat answers for) or, with :attr:`failure` set, fails with that error.
:attr:`invalid_files` are refused at job creation (400, ``invalid_training_file``).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.openai_chat import ChatOpenAI

__all__ = ["DEFAULT_STEPS", "FakeJob", "FineTuneOpenAI"]

DEFAULT_STEPS = ("validating_files", "queued", "running", "running")
_TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class FakeJob:
    body: dict[str, Any]
    position: int = 0
    status: str = "validating_files"
    fine_tuned_model: str | None = None
    error: dict[str, Any] | None = None
    #: Newest last here; the API lists them newest first.
    events: list[dict[str, Any]] = field(default_factory=list)
    created_at: int = field(default_factory=lambda: int(time.time()))
    finished_at: int | None = None


class FineTuneOpenAI(ChatOpenAI):
    """``steps``: the statuses a job goes through before it ends; ``failure``: the
    ``{"code", "message", "param"}`` it ends with instead of succeeding;
    ``organization``: the organization part of fine-tuned model names."""

    def __init__(
        self,
        *,
        steps: tuple[str, ...] = DEFAULT_STEPS,
        failure: dict[str, Any] | None = None,
        organization: str = "modelyard-test",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.steps = steps
        self.failure = failure
        self.organization = organization
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, bytes] = {}
        self.invalid_files: set[str] = set()
        self.jobs: dict[str, FakeJob] = {}
        self._ids = itertools.count(1)

    def routes(self) -> list[BaseRoute]:
        return [
            *super().routes(),
            Route("/files", self.upload_file, methods=["POST"]),
            Route("/files/{file_id}", self.get_file, methods=["GET"]),
            Route("/files/{file_id}", self.delete_file, methods=["DELETE"]),
            Route("/fine_tuning/jobs", self.create_job, methods=["POST"]),
            Route("/fine_tuning/jobs/{job_id}", self.get_job, methods=["GET"]),
            Route("/fine_tuning/jobs/{job_id}/cancel", self.cancel_job, methods=["POST"]),
            Route("/fine_tuning/jobs/{job_id}/events", self.list_events, methods=["GET"]),
        ]

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-fake{next(self._ids):04d}"

    # -- files ------------------------------------------------------------------------

    async def upload_file(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        form = await request.form()
        upload, purpose = form.get("file"), form.get("purpose")
        if purpose != "fine-tune":
            return self.error(400, f"Invalid purpose: {purpose!r}.", code="invalid_purpose")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return self.error(400, "'file' is a required multipart field.", code="missing_file")
        content = await upload.read()
        file_id = self._next_id("file")
        self.file_contents[file_id] = content
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": upload.filename,
            "purpose": "fine-tune",
            "status": "processed",
            "status_details": None,
        }
        return JSONResponse(self.files[file_id])

    async def get_file(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        found = self.files.get(request.path_params["file_id"])
        if found is None:
            return self.error(404, "No such File object.", code="file_not_found")
        return JSONResponse(found)

    async def delete_file(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        file_id = request.path_params["file_id"]
        if self.files.pop(file_id, None) is None:
            return self.error(404, f"No such File object: {file_id}", code="file_not_found")
        self.file_contents.pop(file_id, None)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    # -- jobs -------------------------------------------------------------------------

    def _event(self, job: FakeJob, message: str, level: str = "info") -> None:
        job.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": self._next_id("ftevent"),
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "data": {},
                "type": "message",
            }
        )

    def job_object(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        return {
            "object": "fine_tuning.job",
            "id": job_id,
            "model": job.body["model"],
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "fine_tuned_model": job.fine_tuned_model,
            "organization_id": f"org-{self.organization}",
            "result_files": [],
            "status": job.status,
            "validation_file": job.body.get("validation_file"),
            "training_file": job.body["training_file"],
            "hyperparameters": {
                "n_epochs": "auto",
                "batch_size": "auto",
                "learning_rate_multiplier": "auto",
                **(job.body.get("hyperparameters") or {}),
            },
            "trained_tokens": 1234 if job.status == "succeeded" else None,
            "error": job.error,
            "seed": job.body.get("seed", 42),
            "estimated_finish": None,
            "integrations": [],
        }

    async def create_job(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        body = await request.json()
        for name in ("training_file", "validation_file"):
            file_id = body.get(name)
            if file_id is None and name == "validation_file":
                continue
            if file_id not in self.files:
                return self._invalid(f"invalid {name}: {file_id}", name, None)
            if file_id in self.invalid_files:
                return self._invalid(
                    f"File {file_id} is not a valid fine-tuning file: line 3 has no "
                    "assistant message.",
                    name,
                    "invalid_training_file",
                )
        if body.get("model") not in self.models:
            return self._invalid(
                f"Model {body.get('model')} is not available for fine-tuning or does not exist.",
                "model",
                "model_not_available",
            )
        job_id = self._next_id("ftjob")
        job = FakeJob(body=body, status=self.steps[0] if self.steps else "queued")
        self.jobs[job_id] = job
        self._event(job, f"Validating training file: {body['training_file']}")
        return JSONResponse(self.job_object(job_id))

    def _invalid(self, message: str, param: str, code: str | None) -> Response:
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        }
        return JSONResponse(body, status_code=400)

    def _advance(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job.status in _TERMINAL:
            return
        job.position += 1
        if job.position < len(self.steps):
            status = self.steps[job.position]
            if status != job.status:
                job.status = status
                self._event(job, f"Status: {status}")
            if status == "running":
                self._event(job, f"Step {job.position}/{len(self.steps)}: training loss=0.5")
            return
        job.finished_at = int(time.time())
        if self.failure is not None:
            job.status, job.error = "failed", dict(self.failure)
            self._event(job, f"Fine-tuning job failed: {self.failure['message']}", "error")
            return
        suffix = job.body.get("suffix") or ""
        job.fine_tuned_model = f"ft:{job.body['model']}:{self.organization}:{suffix}:{job_id[-8:]}"
        job.status = "succeeded"
        self.models.append(job.fine_tuned_model)
        self._event(job, f"New fine-tuned model created: {job.fine_tuned_model}")
        self._event(job, "The job has successfully completed")

    async def get_job(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        job_id = request.path_params["job_id"]
        if job_id not in self.jobs:
            return self.error(404, f"No fine-tuning job found with id {job_id}.")
        self._advance(job_id)
        return JSONResponse(self.job_object(job_id))

    async def cancel_job(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        job_id = request.path_params["job_id"]
        job = self.jobs.get(job_id)
        if job is None:
            return self.error(404, f"No fine-tuning job found with id {job_id}.")
        if job.status in _TERMINAL:
            return self._invalid(f"Job {job_id} has already {job.status}.", "job_id", None)
        job.status, job.finished_at = "cancelled", int(time.time())
        self._event(job, "Fine-tuning job cancelled")
        return JSONResponse(self.job_object(job_id))

    async def list_events(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return self.error(404, "No fine-tuning job found.")
        newest_first = list(reversed(job.events))
        after = request.query_params.get("after")
        if after is not None:
            ids = [event["id"] for event in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        limit = int(request.query_params.get("limit", "20"))
        page = newest_first[:limit]
        return JSONResponse({"object": "list", "data": page, "has_more": len(newest_first) > limit})
