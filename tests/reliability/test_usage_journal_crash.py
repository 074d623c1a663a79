"""``kill -9`` a ``modelyard serve`` (one worker, then two) under chat load, restart it on
the same database and data directory: every answer the clients got is in
``usage_records`` exactly once — written from the usage journal the killed processes
left — and the user's budget counts what they cost.

The flush interval is long (:data:`FLUSH_SECONDS`), so without the journal most of what
was answered since the last batch would be missing. Rows beyond the clients' 200s are
the requests in flight at the kill: recorded (the upstream had answered, the usage was
journaled), their answer cut off with the connection — at most one per client.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from modelyard.cli.common import run_with_database
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import UsageRecord
from tests.fakes.openai_chat import ChatOpenAI
from tests.polling import poll_sync
from tests.reliability.scenario import UPSTREAM_KEY, make_accounts
from tests.reliability.server import ServerProcess, server_env
from tests.reliability.traffic import BackgroundTraffic
from tests.reliability.workers import request_on

FLUSH_SECONDS = 30.0
CLIENTS = 8
#: Answers the clients must have had before the kill.
ANSWERS_BEFORE_KILL = 300
#: Seconds every worker may take to replay after the restart (two workers: the one
#: answering first may not be the one replaying).
REPLAY_TIMEOUT = 30.0


def _rows(settings: Settings, prefix: str) -> list[tuple[str, Decimal]]:
    """``(request_id, cost_usd)`` of the usage rows of this test's requests."""

    async def read(database: Database) -> list[tuple[str, Decimal]]:
        async with database.sessions() as session:
            found = await session.execute(
                select(UsageRecord.request_id, UsageRecord.cost_usd).where(
                    UsageRecord.request_id.like(f"{prefix}%")
                )
            )
            return [(str(request_id), Decimal(cost)) for request_id, cost in found]

    return run_with_database(settings, read)


def _configure(url: str, staff: str, user_id: int, upstream: ChatOpenAI) -> None:
    """An OpenAI provider on the fake, and a budget for the user (so it is charged)."""
    headers = {"authorization": f"Bearer {staff}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        provider = {
            "name": "openai",
            "kind": "openai",
            "api_key": UPSTREAM_KEY,
            "base_url": upstream.base_url,
            "is_default": True,
        }
        created = http.post("/v2/admin/providers", json=provider)
        assert created.status_code == 201, created.text
        budget = http.put(f"/v2/admin/limits/users/{user_id}", json={"budget_usd": "1000"})
        assert budget.status_code == 201, budget.text


def _charged_after_one_more(
    server: ServerProcess, staff: str, user_id: int, user_token: str, request_id: str
) -> Decimal:
    """Send one more request to a worker (its budget counter starts from ``usage_records``
    at that admission), and read that worker's spend: the rows' sum plus that request."""
    worker = server.worker_pids()[0]
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one more"}]}
    headers = {"authorization": f"Bearer {user_token}", "x-request-id": request_id}
    sent = request_on(server, worker, "POST", "/v1/chat/completions", body=body, headers=headers)
    assert sent.status == 200, sent.body
    path = f"/v2/admin/limits/users/{user_id}"
    shown = request_on(server, worker, "GET", path, headers={"authorization": f"Bearer {staff}"})
    assert shown.status == 200, shown.body
    return Decimal(shown.json()["usage"]["spent_usd"])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_server_loses_no_usage_record(
    settings: Settings, tmp_path: Path, workers: int
) -> None:
    accounts = make_accounts(settings)
    env = server_env(settings, MODELYARD_USAGE_FLUSH_SECONDS=str(FLUSH_SECONDS))
    prefix = f"journal-{workers}-"
    last = f"after-restart-{workers}"
    journal = settings.data_dir / "usage-journal"
    with ChatOpenAI(keys={UPSTREAM_KEY}) as upstream:
        server = ServerProcess(env, tmp_path / "server", workers=workers).start()
        try:
            _configure(server.url, accounts.staff_token, accounts.user_id, upstream)
            with BackgroundTraffic(
                server.url, accounts.user_token, model="gpt-4o-mini", clients=CLIENTS, prefix=prefix
            ) as traffic:
                deadline = time.monotonic() + 60
                while len(traffic.ok()) < ANSWERS_BEFORE_KILL:
                    assert time.monotonic() < deadline, traffic.answers[-5:]
                    time.sleep(0.02)
                server.kill(workers_too=True)
        finally:
            server.kill(workers_too=True)
        answered = {answer.request_id for answer in traffic.ok()}
        before_restart = len(_rows(settings, prefix))
        left = sorted(journal.glob("*.jsonl"))
        assert left, "the killed server left no journal"

        with ServerProcess(env, tmp_path / "server", workers=workers) as restarted:
            if workers == 1:
                rows = _rows(settings, prefix)  # replayed before the server answered at all
            else:
                rows = poll_sync(
                    lambda: _rows(settings, prefix),
                    lambda found: answered <= {request_id for request_id, _cost in found},
                    timeout=REPLAY_TIMEOUT,
                )
            assert list(journal.glob("*.jsonl")) != left  # the dead segments are gone
            ids = [request_id for request_id, _cost in rows]
            assert len(ids) == len(set(ids)), "a usage record was written twice"
            assert answered <= set(ids), f"answered, not recorded: {sorted(answered - set(ids))}"
            in_flight = set(ids) - answered
            assert in_flight <= traffic.sent - {a.request_id for a in traffic.answers}
            assert len(in_flight) <= CLIENTS
            # The budget counts every recorded request: its spend is read from the rows
            # after the replay, when the first request after the restart is admitted.
            spent = _charged_after_one_more(
                restarted, accounts.staff_token, accounts.user_id, accounts.user_token, last
            )
        after = _rows(settings, last)  # written at the clean stop
        assert len(after) == 1, restarted.log()[-3000:]
        last_cost = after[0][1]
        total = sum((cost for _rid, cost in rows), Decimal(0))
        assert total > 0 and last_cost > 0
        assert spent == total + last_cost
        print(
            f"\n{workers} worker(s): {len(answered)} answered before the kill, "
            f"{before_restart} recorded by then, {len(ids)} after the restart "
            f"({len(in_flight)} in flight at the kill), {len(left)} journal segment(s) replayed"
        )
