"""A fake custom REST provider that fine-tunes, per ``docs/custom-provider.md``.

``GET /test`` (from :class:`FakeCustom`), ``POST /files`` (multipart), ``DELETE
/files/{id}``, ``POST /fine-tune``, ``GET /fine-tune/{id}`` (the job with its events,
oldest first; one step along :attr:`steps` per look), ``POST /fine-tune/{id}/cancel``,
and OpenAI-format ``POST /chat/completions``, which answers for the fine-tuned model once
the job succeeded. Errors are ``{"error": {"message", "code", "param"}}``; a refused key
keeps :class:`FakeCustom`'s ``{"status": "error", "message"}`` shape.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.openai_chat import OpenAIChatMixin
from tests.fakes.providers import FakeCustom

__all__ = ["FineTuneCustom"]

_TERMINAL = ("succeeded", "failed", "cancelled")


class FineTuneCustom(OpenAIChatMixin, FakeCustom):
    """``steps``: statuses before the end; ``failure``: the error a job ends with instead."""

    def __init__(
        self,
        *,
        steps: tuple[str, ...] = ("queued", "running"),
        failure: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.steps = steps
        self.failure = failure
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, int] = {}
        self._ids = itertools.count(1)

    def routes(self) -> list[BaseRoute]:
        return [
            *super().routes(),
            *self.chat_routes(),
            Route("/files", self.upload_file, methods=["POST"]),
            Route("/files/{file_id}", self.delete_file, methods=["DELETE"]),
            Route("/fine-tune", self.create_job, methods=["POST"]),
            Route("/fine-tune/{job_id}", self.get_job, methods=["GET"]),
            Route("/fine-tune/{job_id}/cancel", self.cancel_job, methods=["POST"]),
        ]

    def contract_error(
        self, status: int, message: str, code: str, param: str | None = None
    ) -> Response:
        body = {"error": {"message": message, "code": code, "param": param}}
        return JSONResponse(body, status_code=status)

    async def upload_file(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return self.contract_error(400, "the multipart field 'file' is missing", "no_file")
        file_id = f"cf-{next(self._ids)}"
        self.files[file_id] = await upload.read()
        return JSONResponse({"id": file_id, "status": "processed"}, status_code=201)

    async def delete_file(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        if self.files.pop(request.path_params["file_id"], None) is None:
            return self.contract_error(404, "no such file", "not_found")
        return JSONResponse({"id": request.path_params["file_id"], "deleted": True})

    def _event(self, job: dict[str, Any], message: str, level: str = "info") -> None:
        job["events"].append({"created_at": time.time(), "level": level, "message": message})

    async def create_job(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        body = await request.json()
        if body.get("training_file") not in self.files:
            return self.contract_error(
                400,
                f"unknown training_file {body.get('training_file')}",
                "invalid_file",
                "training_file",
            )
        job_id = f"ft-{next(self._ids)}"
        self.jobs[job_id] = {
            "id": job_id,
            "status": self.steps[0] if self.steps else "queued",
            "fine_tuned_model": None,
            "error": None,
            "events": [],
            "request": body,
        }
        self.positions[job_id] = 0
        self._event(self.jobs[job_id], f"job created for {body.get('model')}")
        return JSONResponse(self._public(job_id), status_code=201)

    def _public(self, job_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.jobs[job_id].items() if k != "request"}

    def _advance(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job["status"] in _TERMINAL:
            return
        self.positions[job_id] += 1
        position = self.positions[job_id]
        if position < len(self.steps):
            job["status"] = self.steps[position]
            self._event(job, f"status {job['status']}")
            return
        if self.failure is not None:
            job["status"], job["error"] = "failed", dict(self.failure)
            self._event(job, "job failed", "error")
            return
        suffix = job["request"].get("suffix") or "model"
        job["fine_tuned_model"] = f"custom:{suffix}:{job_id}"
        job["status"] = "succeeded"
        self.models.append(job["fine_tuned_model"])
        self._event(job, f"model {job['fine_tuned_model']} ready")

    async def get_job(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        job_id = request.path_params["job_id"]
        if job_id not in self.jobs:
            return self.contract_error(404, f"no job {job_id}", "not_found")
        self._advance(job_id)
        return JSONResponse(self._public(job_id))

    async def cancel_job(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        job_id = request.path_params["job_id"]
        if job_id not in self.jobs:
            return self.contract_error(404, f"no job {job_id}", "not_found")
        job = self.jobs[job_id]
        if job["status"] not in _TERMINAL:
            job["status"] = "cancelled"
            self._event(job, "job cancelled")
        return JSONResponse(self._public(job_id))
