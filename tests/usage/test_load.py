"""Under load with upstream faults: one usage record per request, and the recorded tokens
and cost equal what the providers reported to the clients."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from modelyard.db.engine import Database
from modelyard.usage.recorder import UsageRecorder
from tests.fakes.fixtures import GROQ_KEY, OPENAI_KEY
from tests.fakes.openai_chat import ChatGroq, ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.helpers import bearer, make_token, make_user
from tests.usage.conftest import usage_rows

REQUESTS = 2000
CONCURRENCY = 64
ROUTE = "load-route"
#: Catalog prices (USD per million input / output tokens) of the models served.
PRICES = {
    ("openai", "gpt-4o-mini"): (Decimal("0.15"), Decimal("0.60")),
    ("groq", "llama-3.1-8b-instant"): (Decimal("0.05"), Decimal("0.08")),
}


class FlakyOpenAI(ChatOpenAI):
    """Every ``every``-th chat request is answered 503."""

    every = 10

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.chats = 0
        self.failed = 0
        self._count_lock = threading.Lock()

    async def chat_completions(self, request: Request) -> Response:
        with self._count_lock:
            self.chats += 1
            fail = self.chats % self.every == 0
            self.failed += fail
        if fail:
            return self.error(503, "The service is temporarily unavailable.")
        return await super().chat_completions(request)


@pytest.fixture
def flaky() -> Iterator[FlakyOpenAI]:
    with FlakyOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture
def groq() -> Iterator[ChatGroq]:
    with ChatGroq(keys={GROQ_KEY}, models=["llama-3.1-8b-instant"]) as fake:
        yield fake


def model_for(i: int) -> str:
    if i % 50 == 7:
        return "no-such-model"  # 404, refused before any provider
    if i % 50 == 23:
        return "openai/gpt-9-imaginary"  # 404 from the upstream
    if i % 5 == 0:
        return "gpt-4o-mini"  # the flaky provider alone (its 503s are retried)
    return ROUTE  # flaky first, groq when it fails


async def test_every_request_is_recorded_once_under_load(
    app: FastAPI,
    database: Database,
    asgi_http: httpx.AsyncClient,
    recorder: UsageRecorder,
    flaky: FlakyOpenAI,
    groq: ChatGroq,
) -> None:
    await add_provider(database, "flaky openai", flaky.base_url, OPENAI_KEY, default=True)
    await add_provider(database, "groq", groq.base_url, GROQ_KEY, kind="groq")
    staff = bearer(await make_token(database, await make_user(database, "ops@x.io", staff=True)))
    route = {
        "name": ROUTE,
        "targets": [
            {"provider": "openai", "model": "gpt-4o-mini"},
            {"provider": "groq", "model": "llama-3.1-8b-instant"},
        ],
    }
    created = await asgi_http.post("/v2/admin/routes", json=route, headers=staff)
    assert created.status_code == 201, created.text
    token = bearer(await make_token(database, await make_user(database, "load@x.io")))

    recorder.flush_interval = 0.05  # the background writer runs during the load
    await recorder.start()
    gate = asyncio.Semaphore(CONCURRENCY)
    statuses: Counter[int] = Counter()
    served: Counter[str] = Counter()
    tokens = [0, 0]
    cost = Decimal(0)

    async def one(i: int) -> None:
        nonlocal cost
        body = {
            "model": model_for(i),
            "messages": [{"role": "user", "content": " ".join(["word"] * (1 + i % 13))}],
        }
        async with gate:
            response = await asgi_http.post("/v1/chat/completions", json=body, headers=token)
        statuses[response.status_code] += 1
        if response.status_code == 200:
            usage = response.json()["usage"]
            provider = response.headers["x-modelyard-provider"]
            price = PRICES[(provider, response.headers["x-modelyard-model"])]
            served[provider] += 1
            tokens[0] += usage["prompt_tokens"]
            tokens[1] += usage["completion_tokens"]
            cost += (usage["prompt_tokens"] * price[0] + usage["completion_tokens"] * price[1]) / (
                Decimal(1_000_000)
            )

    await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    await recorder.aclose()

    # The faults really happened, and were both absorbed (failover) and surfaced.
    assert flaky.failed >= 100 and served["groq"] >= 50
    assert statuses[404] >= REQUESTS // 50 and sum(statuses.values()) == REQUESTS
    assert REQUESTS - statuses[200] >= 2 * REQUESTS // 50  # the two kinds of bad model

    rows = await usage_rows(database)
    assert len(rows) == REQUESTS and recorder.written == REQUESTS
    assert recorder.dropped == 0 and recorder.pending == 0
    assert len({row.request_id for row in rows}) == REQUESTS
    assert Counter(row.status for row in rows) == statuses
    ok = [row for row in rows if row.status == 200]
    assert sum(row.input_tokens for row in ok) == tokens[0]
    assert sum(row.output_tokens for row in ok) == tokens[1]
    assert sum(row.input_tokens + row.output_tokens for row in rows if row.status != 200) == 0
    assert sum((row.cost_usd for row in rows), Decimal(0)) == cost
    assert Counter(row.provider for row in ok) == served
    assert not any(row.estimated for row in rows)
    assert max(row.attempts for row in ok) >= 2  # failovers are recorded as more attempts

    summary = await asgi_http.get("/v2/usage", headers=staff)
    totals = summary.json()["totals"]
    assert totals["requests"] == REQUESTS
    assert Decimal(totals["cost_usd"]) == cost
    assert totals["errors"] == REQUESTS - statuses[200]
