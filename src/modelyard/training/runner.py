"""The in-process job runner: queued jobs run one per device, each in a worker process.

The runner claims the oldest queued job of each compute type (``cpu``, ``gpu``) when no
job of that type is active, writes the job's ``spec.json``, starts
``python -m modelyard.training.worker`` and follows its ``events.jsonl``: every line is
stored as a :class:`~modelyard.db.models.TrainingEvent` and the latest progress on the
job. A worker that fails reports it in ``result.json``; one that dies without a result
(killed, out of memory) is resumed from its last checkpoint, up to ``max_attempts``.
On start, jobs left active by a previous server whose worker is gone are queued again
and resume from their checkpoint. Nothing a worker does can raise into the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainingDataset, TrainingJob, User
from modelyard.db.types import utcnow
from modelyard.local.access import LocalCaller, resolve_local
from modelyard.local.errors import ModelNotFoundError
from modelyard.local.sources import LocalRef, trusted_ref
from modelyard.training.config import JobSecrets
from modelyard.training.jobs import ACTIVE_STATES, TERMINAL_STATES, add_event
from modelyard.training.models import register
from modelyard.training.outputs import model_folder
from modelyard.training.worker import EVENTS_FILE, RESULT_FILE, SPEC_FILE

__all__ = ["TrainingRunner", "job_work_dir", "latest_checkpoint", "worker_alive"]

logger = logging.getLogger("modelyard.training")


#: Seconds :meth:`TrainingRunner.aclose` lets the loop finish its round before cancelling it.
STOP_GRACE_SECONDS = 10.0
#: The kinds of worker a job may ask for; one job of each runs at a time.
COMPUTE_TYPES = ("cpu", "gpu")


def job_work_dir(data_dir: Path, job_id: int) -> Path:
    """A job's working directory (spec, events, log, checkpoints)."""
    return data_dir / "training" / "jobs" / str(job_id)


def latest_checkpoint(work_dir: Path) -> str | None:
    """The newest complete checkpoint in the job's directory, which may be newer than the
    one recorded: a worker killed between two looks at its events has saved checkpoints
    the database has not heard of. A checkpoint is complete once its ``trainer_state.json``
    (written last) holds the trainer's state; a worker killed while writing it leaves the
    file empty or cut short, and that checkpoint is passed over."""
    steps = [
        (int(path.name.removeprefix("checkpoint-")), path)
        for path in (work_dir / "checkpoints").glob("checkpoint-*")
        if path.name.removeprefix("checkpoint-").isdigit()
    ]
    for _, path in sorted(steps, reverse=True):
        if _saved_state(path / "trainer_state.json"):
            return str(path)
    return None


def _saved_state(path: Path) -> bool:
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def worker_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live training worker (not a recycled pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"modelyard.training.worker" in cmdline


@dataclass
class _Active:
    job_id: int
    compute_type: str
    process: asyncio.subprocess.Process
    work_dir: Path
    offset: int
    log: Any
    cancel_sent_at: float | None = None
    #: The ``validating`` event of a start not yet written to the job (with its pid and
    #: folder); ``None`` once written.
    unrecorded_start: dict[str, Any] | None = None


class TrainingRunner:
    """Runs this server's training jobs; ``start()`` in the lifespan, ``aclose()`` after."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        poll_interval: float = 0.5,
        cancel_grace: float = 5.0,
        max_attempts: int = 3,
        python: str = sys.executable,
        only_job: int | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.poll_interval = poll_interval
        self.cancel_grace = cancel_grace
        self.max_attempts = max_attempts
        self.python = python
        #: Run this job only (the CLI's foreground runner).
        self.only_job = only_job
        self.runner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._active: dict[int, _Active] = {}
        self._secrets: dict[int, JobSecrets] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Set by :meth:`aclose`: the loop ends after its round.
        self._stopping = False

    # Public ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Queue again the jobs a previous server left active, then start the loop."""
        if self._task is not None:
            return
        await self.recover()
        self._task = asyncio.create_task(self._loop(), name="training-runner")

    async def aclose(self) -> None:
        """Stop the loop; running jobs are stopped and queued again (they resume later).

        The loop ends after the round it is in: a round cancelled inside a database call
        can leave its connection mid-operation and the cancelled task never ending (seen
        with PostgreSQL). A round still busy after :data:`STOP_GRACE_SECONDS` is cancelled,
        and waited for as long again at most."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
                if not task.done():
                    task.cancel()
                    await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
                if not task.done():
                    logger.error("training runner: the loop did not stop; left behind")
                elif not task.cancelled() and task.exception() is not None:
                    logger.error("training runner: the loop failed", exc_info=task.exception())
            finally:
                self._stopping = False
        for active in list(self._active.values()):
            with contextlib.suppress(ProcessLookupError):
                active.process.kill()
            await active.process.wait()
            await self._drain(active)
            await self._requeue(active, "the server stopped; the job resumes when it starts")

    def submit(self, job_id: int, secrets: JobSecrets | None = None) -> None:
        """Note a new job (and its in-memory secrets); the loop picks it up at once."""
        if secrets is not None:
            self._secrets[job_id] = secrets
        self._wake.set()

    def wake(self) -> None:
        """Look at the queue and at cancellations now, not at the next poll."""
        self._wake.set()

    @property
    def active_jobs(self) -> list[int]:
        return list(self._active)

    def worker_pid(self, job_id: int) -> int | None:
        active = self._active.get(job_id)
        return active.process.pid if active else None

    async def run_until_done(self, job_id: int) -> None:
        """Supervise until ``job_id`` is finished (the CLI runs jobs in the foreground)."""
        await self.start()
        while True:
            async with self.database.sessions() as session:
                state = await session.scalar(
                    select(TrainingJob.state).where(TrainingJob.id == job_id)
                )
            if state is None or state in TERMINAL_STATES:
                return
            await asyncio.sleep(self.poll_interval)

    def _still_held(self, job: TrainingJob) -> bool:
        """Whether another runner still runs ``job``: its worker is alive on this host.

        A job held on another host is only ever handed to this runner (``only_job``) when
        that host's Celery worker was lost, so it is not held any more."""
        if job.id in self._active:
            return True
        host = (job.runner_id or "").split(":", 1)[0]
        if self.only_job is not None and host and host != socket.gethostname():
            return False
        return worker_alive(job.worker_pid)

    async def recover(self) -> list[int]:
        """Queue again active jobs whose worker is gone (only ``only_job``, if set)."""
        requeued: list[int] = []
        statement = select(TrainingJob).where(TrainingJob.state.in_(ACTIVE_STATES))
        if self.only_job is not None:
            statement = statement.where(TrainingJob.id == self.only_job)
        async with self.database.sessions() as session:
            jobs = list(await session.scalars(statement))
            for job in jobs:
                if self._still_held(job):
                    continue
                job.state = "queued"
                job.worker_pid = None
                job.runner_id = None
                work_dir = job_work_dir(self.settings.data_dir.resolve(), job.id)
                job.checkpoint_path = latest_checkpoint(work_dir) or job.checkpoint_path
                await add_event(
                    session,
                    job.id,
                    "state",
                    {
                        "state": "queued",
                        "reason": "interrupted by a server restart; resuming from "
                        + (Path(job.checkpoint_path).name if job.checkpoint_path else "the start"),
                    },
                )
                requeued.append(job.id)
            await session.commit()
        return requeued

    # Loop -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("training runner: tick failed (retrying)")
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def tick(self) -> None:
        """One round: follow active workers, honour cancellations, start queued jobs."""
        for active in list(self._active.values()):
            await self._follow(active)
        busy = {a.compute_type for a in self._active.values()}
        if len(busy) == len(COMPUTE_TYPES):
            return
        for compute_type in await self._claimable(busy):
            await self._claim(compute_type)

    async def _claimable(self, busy: set[str]) -> list[str]:
        """The compute types this runner is free for that have a queued job and no active
        one: one query a round (the round runs every ``poll_interval`` on the server's
        event loop, beside the gateway's requests)."""
        async with self.database.sessions() as session:
            rows = await session.execute(
                select(TrainingJob.compute_type, TrainingJob.state)
                .where(TrainingJob.state.in_(("queued", *ACTIVE_STATES)))
                .distinct()
            )
            found = {(compute_type, state) for compute_type, state in rows}
        return [
            compute_type
            for compute_type in COMPUTE_TYPES
            if compute_type not in busy
            and (compute_type, "queued") in found
            and not any((compute_type, state) in found for state in ACTIVE_STATES)
        ]

    async def _claim(self, compute_type: str) -> None:
        async with self.database.sessions() as session:
            others = await session.scalar(
                select(TrainingJob.id).where(
                    TrainingJob.compute_type == compute_type,
                    TrainingJob.state.in_(ACTIVE_STATES),
                )
            )
            if others is not None:
                return
            statement = select(TrainingJob).where(
                TrainingJob.compute_type == compute_type, TrainingJob.state == "queued"
            )
            if self.only_job is not None:
                statement = statement.where(TrainingJob.id == self.only_job)
            job = await session.scalar(statement.order_by(TrainingJob.id).limit(1))
            if job is None:
                return
            claimed = await session.execute(
                update(TrainingJob)
                .where(TrainingJob.id == job.id, TrainingJob.state == "queued")
                .values(
                    state="validating",
                    runner_id=self.runner_id,
                    attempts=TrainingJob.attempts + 1,
                    started_at=job.started_at or utcnow(),
                    error=None,
                )
            )
            if not getattr(claimed, "rowcount", 0):
                return
            dataset = await session.get(TrainingDataset, job.dataset_id) if job.dataset_id else None
            await session.commit()
            await session.refresh(job)
        if dataset is None:
            await self._finish(job.id, "failed", error="its dataset was deleted")
            return
        try:
            await self._spawn(job, dataset)
        except Exception as exc:
            logger.exception("training runner: could not start job %s", job.id)
            await self._finish(job.id, "failed", error=f"the worker did not start: {exc}")

    async def _base(self, job: TrainingJob) -> LocalRef:
        """The base model as its owner may use it now (a model made private since the job
        was queued is refused like one that does not exist)."""
        name = job.base_model
        async with self.database.sessions() as session:
            user = await session.get(User, job.user_id) if job.user_id is not None else None
            try:
                return await resolve_local(session, name, LocalCaller.of(user), self.settings)
            except ModelNotFoundError:
                if user is not None:
                    raise
        return trusted_ref(name)  # the service's own job (the CLI): any directory

    async def _spawn(self, job: TrainingJob, dataset: TrainingDataset) -> None:
        data_dir = self.settings.data_dir.resolve()
        work_dir = job_work_dir(data_dir, job.id)
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / RESULT_FILE).unlink(missing_ok=True)
        resume_from = latest_checkpoint(work_dir) or job.checkpoint_path
        spec = {
            "job_id": job.id,
            "config": job.config,
            "output_name": job.output_name,
            "output_dir": str(data_dir / model_folder(job.user_id, job.output_name)),
            "base": asdict(await self._base(job)),
            "dataset": {
                "path": str(data_dir / dataset.path),
                "format": dataset.format,
                "sha256": dataset.sha256,
                "name": dataset.name,
            },
            "resume_from": resume_from,
            # The time a CPU job's recommended passes are held to (0: not held).
            "cpu_time_target_s": self.settings.training_cpu_time_target_seconds,
            # A language model's advice the user chose to train with (``--advice``).
            "advice": job.advice if (job.advice or {}).get("applied") else None,
            "hub": None
            if job.hub_push is None
            else {
                "repo_id": job.hub_push.get("repo_id"),
                "private": bool(job.hub_push.get("private", True)),
                "endpoint": self.settings.hf_endpoint,
            },
        }
        (work_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2))
        events = work_dir / EVENTS_FILE
        offset = events.stat().st_size if events.exists() else 0
        log = (work_dir / "worker.log").open("ab")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
        if job.compute_type == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        process = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "modelyard.training.worker",
            str(work_dir),
            stdin=asyncio.subprocess.PIPE,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        assert process.stdin is not None
        secrets = self._secrets.get(job.id) or JobSecrets()
        process.stdin.write((json.dumps(secrets.as_dict()) + "\n").encode())
        with contextlib.suppress(ConnectionError):
            await process.stdin.drain()
        process.stdin.close()
        active = _Active(job.id, job.compute_type, process, work_dir, offset, log)
        active.unrecorded_start = {
            "state": "validating",
            "attempt": job.attempts,
            "resume_from": Path(resume_from).name if resume_from else None,
        }
        self._active[job.id] = active
        await self._record_start(active)

    async def _record_start(self, active: _Active) -> None:
        """Write a started worker's pid and folder to its job; a failed write is logged and
        tried again on the next round, while the worker is followed as ever."""
        event = active.unrecorded_start
        if event is None:
            return
        work_dir = active.work_dir.relative_to(self.settings.data_dir.resolve())
        try:
            async with self.database.sessions() as session:
                await session.execute(
                    update(TrainingJob)
                    .where(TrainingJob.id == active.job_id)
                    .values(worker_pid=active.process.pid, work_dir=str(work_dir))
                )
                await add_event(session, active.job_id, "state", event)
                await session.commit()
        except Exception:
            logger.exception(
                "training runner: could not record job %s's worker (retrying)", active.job_id
            )
            return
        active.unrecorded_start = None

    # Following a worker ---------------------------------------------------------------

    def _read_events(self, active: _Active) -> list[dict[str, Any]]:
        path = active.work_dir / EVENTS_FILE
        try:
            with path.open("rb") as handle:
                handle.seek(active.offset)
                data = handle.read()
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        active.offset += end + 1
        lines = []
        for raw in data[: end + 1].splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
        return lines

    async def _drain(self, active: _Active) -> None:
        """Store the worker's new events and the latest progress, checkpoint and state."""
        lines = self._read_events(active)
        if not lines:
            return
        values: dict[str, Any] = {}
        async with self.database.sessions() as session:
            for line in lines:
                kind = str(line.pop("kind", "log"))
                step = line.get("step")
                if kind == "progress":
                    values["progress"] = line
                elif kind == "checkpoint":
                    values["checkpoint_path"] = line["path"]
                elif kind in ("recommended", "search"):
                    # The config as chosen for the data, then by the ``auto`` search.
                    values["config"] = line.pop("config")
                elif kind == "hub":
                    values["hub_push"] = {k: v for k, v in line.items() if k != "time"}
                elif kind == "state" and line.get("state") == "running":
                    values["state"] = "running"
                elif kind == "state":
                    continue  # ``validating`` was recorded when the worker started
                await add_event(session, active.job_id, kind, line, step)
            if values:
                await session.execute(
                    update(TrainingJob)
                    .where(
                        TrainingJob.id == active.job_id,
                        TrainingJob.state.in_(ACTIVE_STATES),
                    )
                    .values(**values)
                )
            await session.commit()

    async def _follow(self, active: _Active) -> None:
        await self._record_start(active)
        await self._drain(active)
        returncode = active.process.returncode
        if returncode is None:
            await self._check_cancel(active)
            with contextlib.suppress(TimeoutError):
                returncode = await asyncio.wait_for(active.process.wait(), 0.001)
            if returncode is None:
                return
        await self._drain(active)
        del self._active[active.job_id]
        active.log.close()
        result = self._result(active)
        async with self.database.sessions() as session:
            job = await session.get(TrainingJob, active.job_id)
        if job is None:
            return
        if job.cancel_requested:
            await self._finish(job.id, "cancelled")
        elif result is not None:
            await self._finish(
                job.id,
                result["state"],
                metrics=result.get("metrics"),
                error=result.get("error"),
                hub_push=result.get("hub_push"),
            )
        elif job.attempts < self.max_attempts:
            await self._requeue(
                active, f"the worker died (exit status {returncode}); resuming from checkpoint"
            )
        else:
            await self._finish(
                job.id,
                "failed",
                error=f"the worker died {job.attempts} times (last exit status {returncode}); "
                f"see {active.work_dir / 'worker.log'}",
            )

    def _result(self, active: _Active) -> dict[str, Any] | None:
        try:
            value = json.loads((active.work_dir / RESULT_FILE).read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) and "state" in value else None

    async def _check_cancel(self, active: _Active) -> None:
        if active.cancel_sent_at is not None:
            if time.monotonic() - active.cancel_sent_at > self.cancel_grace:
                with contextlib.suppress(ProcessLookupError):
                    active.process.kill()
            return
        async with self.database.sessions() as session:
            wanted = await session.scalar(
                select(TrainingJob.cancel_requested).where(TrainingJob.id == active.job_id)
            )
        if wanted or wanted is None:
            active.cancel_sent_at = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                active.process.send_signal(signal.SIGTERM)

    async def _requeue(self, active: _Active, reason: str) -> None:
        async with self.database.sessions() as session:
            await session.execute(
                update(TrainingJob)
                .where(TrainingJob.id == active.job_id, TrainingJob.state.in_(ACTIVE_STATES))
                .values(state="queued", worker_pid=None, runner_id=None)
            )
            await add_event(session, active.job_id, "state", {"state": "queued", "reason": reason})
            await session.commit()
        self._active.pop(active.job_id, None)
        self._wake.set()

    async def _finish(
        self,
        job_id: int,
        state: str,
        *,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
        hub_push: dict[str, Any] | None = None,
    ) -> None:
        self._secrets.pop(job_id, None)
        async with self.database.sessions() as session:
            job = await session.get(TrainingJob, job_id)
            if job is None:
                return
            job.state = state
            job.finished_at = utcnow()
            job.worker_pid = None
            job.metrics = metrics
            job.error = error
            if hub_push is not None:
                job.hub_push = hub_push
            elif job.hub_push is not None and job.hub_push.get("state") == "pending":
                job.hub_push = {**job.hub_push, "state": "skipped", "error": f"the job {state}"}
            data: dict[str, Any] = {"state": state}
            if error:
                data["error"] = error
            if metrics:
                data["metrics"] = metrics
            await add_event(session, job_id, "state", data)
            if state == "succeeded":
                await self._register(session, job)
            await session.commit()
        if state == "succeeded":
            work_dir = job_work_dir(self.settings.data_dir.resolve(), job_id)
            shutil.rmtree(work_dir / "checkpoints", ignore_errors=True)
        self._wake.set()

    async def _register(self, session: Any, job: TrainingJob) -> None:
        """Record the trained model, private to the job's owner."""
        await register(session, job)
