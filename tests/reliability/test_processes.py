"""``modelyard serve --workers 2`` with Redis: the two worker processes share the rate
limits, the cooldowns and the response cache, and each is correct.

Every request below goes to a worker chosen by the test (see
:mod:`tests.reliability.workers`), alternating between the two, so each check would fail
if that state were kept per process: a per-process limit would let twice the requests
through, a per-process cooldown would call the rate-limited key once per worker, and a
per-process cache would call the upstream once per worker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from modelyard.config import Settings
from tests.fakes.openai_chat import ChatGroq, ChatOpenAI
from tests.reliability.scenario import UPSTREAM_KEY, make_accounts
from tests.reliability.server import ServerProcess, server_env
from tests.reliability.workers import Reply, request_on

REDIS_URL = "redis://127.0.0.1:6379/0"
GROQ_KEY = "gsk_reliability0123456789abcdef"
COOLING_ROUTE = "cooling-route"
RPM = 4


@dataclass
class Cluster:
    server: ServerProcess
    workers: list[int]
    openai: ChatOpenAI
    groq: ChatGroq
    staff: str
    #: One user per check: a limits row is cached per process, absent rows too.
    tokens: dict[str, str]
    user_ids: dict[str, int]

    def chat(
        self, worker: int, user: str, content: str, headers: dict[str, str] | None = None
    ) -> Reply:
        return self.call(
            worker,
            "POST",
            "/v1/chat/completions",
            token=self.tokens[user],
            body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]},
            headers=headers,
        )

    def call(
        self,
        worker: int,
        method: str,
        path: str,
        *,
        token: str,
        body: object = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        auth = {"authorization": f"Bearer {token}", **(headers or {})}
        return request_on(self.server, worker, method, path, body=body, headers=auth)


def _chats(fake: ChatOpenAI | ChatGroq) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


def _configure(cluster: Cluster) -> None:
    """Providers and the route, before any gateway request (each worker caches them)."""
    first = cluster.workers[0]
    for provider in (
        {
            "name": "openai",
            "kind": "openai",
            "api_key": UPSTREAM_KEY,
            "base_url": cluster.openai.base_url,
            "is_default": True,
        },
        {"name": "groq", "kind": "groq", "api_key": GROQ_KEY, "base_url": cluster.groq.base_url},
    ):
        reply = cluster.call(
            first, "POST", "/v2/admin/providers", token=cluster.staff, body=provider
        )
        assert reply.status == 201, reply.body
    route = {
        "name": COOLING_ROUTE,
        "targets": [
            {"provider": "groq", "model": "llama-3.1-8b-instant"},
            {"provider": "openai", "model": "gpt-4o-mini"},
        ],
    }
    reply = cluster.call(first, "POST", "/v2/admin/routes", token=cluster.staff, body=route)
    assert reply.status == 201, reply.body


@pytest.fixture(scope="module")
def cluster(
    module_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    settings = module_settings
    accounts = {name: make_accounts(settings, prefix=f"{name}-") for name in ("limits", "shared")}
    prefix = f"modelyard-test:{uuid.uuid4().hex}:"
    env = server_env(settings, MODELYARD_REDIS_URL=REDIS_URL, MODELYARD_REDIS_PREFIX=prefix)
    workdir: Path = tmp_path_factory.mktemp("two-workers")
    with (
        ChatOpenAI(keys={UPSTREAM_KEY}) as openai,
        ChatGroq(keys={GROQ_KEY}, models=["llama-3.1-8b-instant"]) as groq,
        ServerProcess(env, workdir, workers=2) as server,
    ):
        workers = server.worker_pids()
        assert len(workers) == 2, workers
        cluster = Cluster(
            server,
            workers,
            openai,
            groq,
            accounts["limits"].staff_token,
            {name: account.user_token for name, account in accounts.items()},
            {name: account.user_id for name, account in accounts.items()},
        )
        _configure(cluster)
        yield cluster
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _clear_of_minute_end(margin: float = 8.0) -> None:
    """Rate limits count per UTC minute: start far enough from the minute's end."""
    now = datetime.now(UTC)
    second = now.second + now.microsecond / 1e6
    if second > 60 - margin:
        time.sleep(60 - second + 0.2)


def test_a_requests_per_minute_limit_holds_across_both_workers(cluster: Cluster) -> None:
    a, b = cluster.workers
    user_id = cluster.user_ids["limits"]
    path = f"/v2/admin/limits/users/{user_id}"
    put = cluster.call(a, "PUT", path, token=cluster.staff, body={"requests_per_minute": RPM})
    assert put.status in (200, 201), put.body
    _clear_of_minute_end()
    replies = [cluster.chat((a, b)[n % 2], "limits", f"limited {n}") for n in range(2 * RPM)]
    assert [(r.worker, r.status) for r in replies] == [
        ((a, b)[n % 2], 200 if n < RPM else 429) for n in range(2 * RPM)
    ]
    refused = replies[-1]
    assert refused.json()["error"]["type"] and int(refused.headers["retry-after"]) >= 1
    shown = cluster.call(b, "GET", path, token=cluster.staff).json()
    assert shown["requests_per_minute"] == RPM
    assert shown["usage"]["requests_this_minute"] == RPM


def test_a_rate_limited_key_is_skipped_by_the_other_worker(cluster: Cluster) -> None:
    a, b = cluster.workers
    cluster.groq.fail_with(429, headers={"retry-after": "60"})
    try:
        before = _chats(cluster.groq)
        first = cluster.call(
            a,
            "POST",
            "/v1/chat/completions",
            token=cluster.tokens["shared"],
            body={"model": COOLING_ROUTE, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert first.status == 200, first.body
        assert first.headers["x-modelyard-provider"] == "openai"
        assert first.headers["x-modelyard-attempts"] == "2"
        assert _chats(cluster.groq) == before + 1
        for worker in (b, a, b):
            reply = cluster.call(
                worker,
                "POST",
                "/v1/chat/completions",
                token=cluster.tokens["shared"],
                body={"model": COOLING_ROUTE, "messages": [{"role": "user", "content": "hi"}]},
            )
            assert reply.status == 200, reply.body
            assert reply.headers["x-modelyard-attempts"] == "1", reply.headers
        # The key that got the 429 was called once, by worker A; B skipped it at once.
        assert _chats(cluster.groq) == before + 1
    finally:
        cluster.groq.fail_with(None)


def test_an_answer_cached_by_one_worker_is_served_by_the_other(cluster: Cluster) -> None:
    a, b = cluster.workers
    content = f"cache me {uuid.uuid4().hex}"
    before = _chats(cluster.openai)
    cache = {"x-modelyard-cache": "true"}
    miss = cluster.chat(a, "shared", content, headers=cache)
    assert miss.status == 200 and miss.headers["x-modelyard-cache"] == "miss", miss.headers
    assert _chats(cluster.openai) == before + 1
    hit = cluster.chat(b, "shared", content, headers=cache)
    assert hit.status == 200 and hit.headers["x-modelyard-cache"] == "hit", hit.headers
    assert hit.json() == miss.json()
    assert _chats(cluster.openai) == before + 1
    # Another question is not served from the cache.
    other = cluster.chat(b, "shared", content + "?", headers=cache)
    assert other.headers["x-modelyard-cache"] == "miss"
    assert _chats(cluster.openai) == before + 2
