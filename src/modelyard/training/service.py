"""The training side of one application: where its jobs run.

With the ``local`` backend (the default) a :class:`TrainingRunner` in this process runs
them in worker processes; with ``celery`` they are sent to Celery workers over Redis
(:mod:`.celery_jobs`). The app's lifespan calls :func:`start_training` after start-up and
:func:`stop_training` before closing the state; routes reach the service with
:func:`training_service` (created on first use, so apps built without a lifespan — the
tests — work too; their local jobs simply stay queued until the runner is started).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from modelyard.db.models import TrainingJob
from modelyard.training.celery_jobs import CeleryJobs
from modelyard.training.config import JobSecrets
from modelyard.training.runner import TrainingRunner

__all__ = ["TrainingService", "start_training", "stop_training", "training_service"]


@dataclass
class TrainingService:
    #: Runs jobs in worker processes on this machine (the ``local`` backend).
    runner: TrainingRunner
    #: Sends jobs to Celery workers (the ``celery`` backend), else ``None``.
    celery: CeleryJobs | None = None

    def submit(self, job: TrainingJob, secrets: JobSecrets | None = None) -> None:
        """Hand a new job (and its in-memory secrets) to whoever runs jobs."""
        if self.celery is not None:
            self.celery.submit(job.id, job.compute_type, secrets)
        else:
            self.runner.submit(job.id, secrets)

    def wake(self) -> None:
        """Look at cancellations now (Celery workers see them at their next poll)."""
        self.runner.wake()


def training_service(app: FastAPI) -> TrainingService:
    """The app's training service (created on first use)."""
    service: TrainingService | None = getattr(app.state, "training", None)
    if service is None:
        state = app.state.modelyard
        celery = None
        if state.settings.jobs_backend == "celery":
            celery = CeleryJobs(state.settings, state.keyring)
        service = TrainingService(TrainingRunner(state.settings, state.database), celery)
        app.state.training = service
    return service


async def start_training(app: FastAPI) -> TrainingService:
    """Start the local runner (jobs interrupted by a restart are resumed)."""
    service = training_service(app)
    if service.celery is None:
        await service.runner.start()
    return service


async def stop_training(app: FastAPI) -> None:
    """Stop the runner; running jobs are stopped and resume at the next start."""
    service: TrainingService | None = getattr(app.state, "training", None)
    if service is not None:
        await service.runner.aclose()
