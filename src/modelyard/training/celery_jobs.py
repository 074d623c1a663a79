"""Training jobs on Celery workers over Redis (``MODELYARD_JOBS_BACKEND=celery``).

The server sends ``modelyard.training.run_job`` to the queue of the job's compute type
(``<celery_queue>.cpu`` or ``.gpu``, so GPU machines take the GPU queue); a worker started
with ``modelyard jobs worker`` runs it with the same :class:`TrainingRunner` the server
uses — worker process, events, checkpoints, resume, cancel — limited to that one job.
Workers need the server's database, data directory and encryption keys.

A job's keys travel **sealed**: encrypted with the server's keys (Fernet) inside the task
message, so neither the broker nor the database ever holds them in plaintext; the worker
opens them in memory, hands them to the training process and drops them when the job
ends. Tasks are acknowledged late and given back when a worker is lost, so another worker
resumes the job from its checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from celery import Celery

from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.errors import ModelyardError
from modelyard.security.encryption import Keyring, load_keyring
from modelyard.training.config import JobSecrets
from modelyard.training.runner import TrainingRunner

__all__ = ["TASK_NAME", "CeleryJobs", "celery_app", "queue_name", "run_job", "seal", "unseal"]

TASK_NAME = "modelyard.training.run_job"
#: Seconds before Redis hands an unacknowledged task to another worker: longer than a job.
VISIBILITY_TIMEOUT = 48 * 3600

logger = logging.getLogger("modelyard.training")


def queue_name(settings: Settings, compute_type: str) -> str:
    return f"{settings.celery_queue}.{compute_type}"


def broker_url(settings: Settings) -> str:
    url = settings.celery_broker_url or settings.redis_url
    if not url:
        raise ModelyardError(
            "MODELYARD_JOBS_BACKEND=celery needs a broker: set MODELYARD_CELERY_BROKER_URL "
            "or MODELYARD_REDIS_URL (e.g. redis://127.0.0.1:6379/0)."
        )
    return url


def seal(keyring: Keyring, secrets: JobSecrets) -> str | None:
    """The secrets, encrypted for the task message (``None`` when there are none)."""
    values = secrets.as_dict()
    return keyring.encrypt(json.dumps(values)) if values else None


def unseal(keyring: Keyring, sealed: str | None) -> JobSecrets:
    if not sealed:
        return JobSecrets()
    values = json.loads(keyring.decrypt(sealed))
    return JobSecrets(hf_token=values.get("hf_token"), groq_api_key=values.get("groq_api_key"))


def run_job(job_id: int, sealed: str | None = None) -> str:
    """The task: run job ``job_id`` here until it ends; its final state."""
    settings = Settings()
    secrets = unseal(load_keyring(settings, create=False), sealed)
    return asyncio.run(_supervise(settings, job_id, secrets))


async def _supervise(settings: Settings, job_id: int, secrets: JobSecrets) -> str:
    from sqlalchemy import select

    from modelyard.db.models import TrainingJob

    database = create_database(settings)
    runner = TrainingRunner(settings, database, only_job=job_id)
    runner.submit(job_id, secrets)
    try:
        await runner.run_until_done(job_id)
    finally:
        await runner.aclose()
    async with database.sessions() as session:
        state = await session.scalar(select(TrainingJob.state).where(TrainingJob.id == job_id))
    await database.dispose()
    logger.info("training job %s ended: %s", job_id, state)
    return str(state)


def celery_app(settings: Settings) -> Celery:
    """The Celery application for ``settings`` (its broker, queues and the task)."""
    app = Celery("modelyard", broker=broker_url(settings), set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        task_default_queue=queue_name(settings, "cpu"),
    )
    app.task(name=TASK_NAME)(run_job)
    return app


class CeleryJobs:
    """The server's side: sends jobs to the workers' queues."""

    def __init__(self, settings: Settings, keyring: Keyring) -> None:
        self.settings = settings
        self.keyring = keyring
        self.app = celery_app(settings)

    def submit(self, job_id: int, compute_type: str, secrets: JobSecrets | None = None) -> Any:
        sealed = seal(self.keyring, secrets) if secrets else None
        return self.app.send_task(
            TASK_NAME, args=[job_id, sealed], queue=queue_name(self.settings, compute_type)
        )
