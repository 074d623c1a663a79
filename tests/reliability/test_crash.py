"""``kill -9`` a ``modelyard serve`` process while it serves chat traffic and runs a
training job with checkpoints; then restart it on the same database and data directory.

What must hold:

* the database the crash left is consistent — migrations at head and matching the models,
  no row pointing at a missing parent, SQLite's own integrity check clean — before the
  restart and after it;
* every 200 the clients got is in ``usage_records`` (matched by request id), except
  answers completed less than :data:`LOSS_BOUND_SECONDS` before the kill: the usage writer
  commits every ``MODELYARD_USAGE_FLUSH_SECONDS`` (:data:`FLUSH_SECONDS` here), so what
  was queued since the last commit is what a crash may lose — the bound is that interval
  plus :data:`WRITE_MARGIN_SECONDS` for a write in progress and a late timer on a busy
  machine. No request is recorded twice, none that was not sent;
* the training worker died with the server (no orphan keeps training), and after the
  restart the job resumes from its last checkpoint (its second run starts at that step,
  not at zero) and succeeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from modelyard.cli.common import run_with_database
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainingEvent, UsageRecord
from modelyard.training.runner import worker_alive
from tests.fakes.openai_chat import ChatOpenAI
from tests.helpers import offer_local_model
from tests.reliability.consistency import consistency_problems
from tests.reliability.scenario import UPSTREAM_KEY, make_accounts
from tests.reliability.server import ServerProcess, server_env
from tests.reliability.traffic import BackgroundTraffic
from tests.training.conftest import classification_rows, write_csv
from tests.training.conftest import tiny_bert as tiny_bert

FLUSH_SECONDS = 0.5
WRITE_MARGIN_SECONDS = 1.0
LOSS_BOUND_SECONDS = FLUSH_SECONDS + WRITE_MARGIN_SECONDS
#: Answers the clients must have had before the kill.
ANSWERS_BEFORE_KILL = 200
JOB_TIMEOUT = 180.0
#: Checkpoints far enough apart that the one the database names at the kill is still on
#: disk (the trainer keeps the last two), and steps enough that the job is still running.
MAX_STEPS = 120
CHECKPOINT_STEPS = 40


def _wait_job(http: httpx.Client, job_id: int, until: Any, timeout: float = JOB_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = http.get(f"/v2/training/jobs/{job_id}").json()
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} is stuck: {job}"
        time.sleep(0.1)


def _setup(http: httpx.Client, staff: str, upstream: ChatOpenAI, data: Path, base: Path) -> int:
    """An OpenAI provider on the fake, a dataset, and a training job; the job's id."""
    provider = {
        "name": "openai",
        "kind": "openai",
        "api_key": UPSTREAM_KEY,
        "base_url": upstream.base_url,
        "is_default": True,
    }
    created = http.post(
        "/v2/admin/providers", json=provider, headers={"authorization": f"Bearer {staff}"}
    )
    assert created.status_code == 201, created.text
    csv = write_csv(data / "reviews.csv", classification_rows(40))
    uploaded = http.post("/v2/datasets", files={"file": (csv.name, csv.read_bytes())})
    assert uploaded.status_code == 201, uploaded.text
    job = {
        "task": "classification",
        "base_model": str(base),
        "dataset_id": uploaded.json()["id"],
        "batch_size": 4,
        "max_length": 16,
        "logging_steps": 5,
        "learning_rate": 1e-3,
        "max_steps": MAX_STEPS,
        "checkpoint_steps": CHECKPOINT_STEPS,
    }
    started = http.post("/v2/training/jobs", json=job)
    assert started.status_code == 201, started.text
    return int(started.json()["id"])


def _usage_ids(settings: Settings, prefix: str) -> list[str]:
    """The request ids of the usage rows, each row checked to be whole."""

    async def read(database: Database) -> list[str]:
        async with database.sessions() as session:
            rows = list(
                await session.scalars(
                    select(UsageRecord).where(UsageRecord.request_id.like(f"{prefix}%"))
                )
            )
        for row in rows:
            whole = (row.status, row.endpoint, row.provider, row.upstream_model) == (
                200,
                "chat",
                "openai",
                "gpt-4o-mini",
            )
            assert whole and row.input_tokens > 0 and row.output_tokens > 0, vars(row)
        return [str(row.request_id) for row in rows]

    return run_with_database(settings, read)


def _job_states(settings: Settings, job_id: int) -> list[dict[str, Any]]:
    async def read(database: Database) -> list[dict[str, Any]]:
        async with database.sessions() as session:
            events = await session.scalars(
                select(TrainingEvent)
                .where(TrainingEvent.job_id == job_id, TrainingEvent.kind == "state")
                .order_by(TrainingEvent.id)
            )
            return [dict(event.data) for event in events]

    return run_with_database(settings, read)


def test_a_killed_server_loses_at_most_one_flush_and_its_job_resumes(
    settings: Settings, tmp_path: Path, tiny_bert: Path
) -> None:
    accounts = make_accounts(settings)
    run_with_database(settings, lambda db: offer_local_model(db, str(tiny_bert), "classification"))
    env = server_env(
        settings,
        MODELYARD_USAGE_FLUSH_SECONDS=str(FLUSH_SECONDS),
        MODELYARD_LOCAL_MODEL_DIRS=str(tiny_bert.parent),
    )
    auth = {"authorization": f"Bearer {accounts.user_token}"}
    with ChatOpenAI(keys={UPSTREAM_KEY}) as upstream:
        server = ServerProcess(env, tmp_path / "server").start()
        try:
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
                job_id = _setup(http, accounts.staff_token, upstream, tmp_path, tiny_bert)
                with BackgroundTraffic(
                    server.url, accounts.user_token, model="gpt-4o-mini", prefix="crash-"
                ) as traffic:
                    job = _wait_job(http, job_id, lambda j: j["checkpoint_path"] is not None)
                    deadline = time.monotonic() + 60
                    while len(traffic.ok()) < ANSWERS_BEFORE_KILL:
                        assert time.monotonic() < deadline, traffic.answers[-5:]
                        time.sleep(0.05)
                    worker = job["worker_pid"]
                    assert worker_alive(worker), job
                    killed_at = time.monotonic()
                    server.kill()
        finally:
            server.kill(workers_too=True)

        # The job's worker died with the server (PR_SET_PDEATHSIG): no orphan trains on.
        deadline = time.monotonic() + 10
        while worker_alive(worker):
            assert time.monotonic() < deadline, "the training worker outlived the server"
            time.sleep(0.1)
        assert consistency_problems(settings) == []

        # Usage: everything answered before the last flush interval is there, once.
        ok = {answer.request_id: answer.at for answer in traffic.ok()}
        recorded = _usage_ids(settings, "crash-")
        assert len(recorded) == len(set(recorded)), "a usage record was written twice"
        assert set(recorded) <= traffic.sent
        lost = {request_id: killed_at - at for request_id, at in ok.items()}
        for request_id in recorded:
            lost.pop(request_id, None)
        too_old = {rid: round(age, 3) for rid, age in lost.items() if age > LOSS_BOUND_SECONDS}
        assert too_old == {}, f"answered long before the kill, yet not recorded: {too_old}"
        # Rows without a 200 the client saw: requests in flight at the kill (one a client).
        assert len(set(recorded) - set(ok)) <= traffic.clients
        print(
            f"\n{len(ok)} answered before the kill, {len(recorded)} recorded, {len(lost)} lost "
            f"(the oldest answered {max(lost.values(), default=0):.3f} s before the kill; "
            f"bound {LOSS_BOUND_SECONDS} s)"
        )

        # The restart: the job resumes from its checkpoint and succeeds.
        with (
            ServerProcess(env, tmp_path / "server") as restarted,
            httpx.Client(base_url=restarted.url, headers=auth, timeout=30) as http,
        ):
            done = _wait_job(http, job_id, lambda j: j["state"] in ("succeeded", "failed"))
            assert done["state"] == "succeeded", done
            assert done["attempts"] == 2, done
            after = http.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert after.status_code == 200, after.text
        states = _job_states(settings, job_id)
        requeued = [s for s in states if "interrupted by a server restart" in s.get("reason", "")]
        assert len(requeued) == 1, states
        resumed = [s for s in states if s["state"] == "validating"][1]["resume_from"]
        checkpoint_step = int(resumed.rsplit("-", 1)[1])
        # The newest checkpoint on disk, which may be newer than the one the database had
        # heard of (even the last step's, when the worker got there before the kill).
        assert checkpoint_step % CHECKPOINT_STEPS == 0 and 0 < checkpoint_step <= MAX_STEPS
        assert resumed in requeued[0]["reason"], states
        running = [s.get("step") for s in states if s["state"] == "running"]
        assert running == [0, checkpoint_step], states
        assert consistency_problems(settings) == []
