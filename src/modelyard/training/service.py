"""The training side of one application: its job runner.

The app's lifespan calls :func:`start_training` after start-up and
:func:`stop_training` before closing the state; routes reach the service with
:func:`training_service` (created on first use, so apps built without a lifespan — the
tests — work too; their jobs simply stay queued until the runner is started).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from modelyard.training.runner import TrainingRunner

__all__ = ["TrainingService", "start_training", "stop_training", "training_service"]


@dataclass
class TrainingService:
    #: Runs jobs in worker processes on this machine (the ``local`` executor).
    runner: TrainingRunner


def training_service(app: FastAPI) -> TrainingService:
    """The app's training service (created on first use)."""
    service: TrainingService | None = getattr(app.state, "training", None)
    if service is None:
        state = app.state.modelyard
        service = TrainingService(TrainingRunner(state.settings, state.database))
        app.state.training = service
    return service


async def start_training(app: FastAPI) -> TrainingService:
    """Start the runner (jobs interrupted by a restart are resumed)."""
    service = training_service(app)
    await service.runner.start()
    return service


async def stop_training(app: FastAPI) -> None:
    """Stop the runner; running jobs are stopped and resume at the next start."""
    service: TrainingService | None = getattr(app.state, "training", None)
    if service is not None:
        await service.runner.aclose()
