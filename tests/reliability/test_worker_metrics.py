"""``/metrics`` of ``modelyard serve --workers 2`` sums both workers, whichever answers:
the gateway's counters and histograms (prometheus_client's multiprocess mode) and the
figures computed per process (the usage recorder's written records, GC collections)."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelyard.config import Settings
from tests.fakes.openai_chat import ChatOpenAI
from tests.polling import poll_sync
from tests.reliability.scenario import UPSTREAM_KEY, make_accounts
from tests.reliability.server import ServerProcess, server_env
from tests.reliability.workers import request_on

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "count me"}]}


def _samples(text: str, name: str) -> float:
    """The sum of every sample called ``name`` in a text exposition."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def test_every_worker_answers_the_sum_of_all_workers(settings: Settings, tmp_path: Path) -> None:
    accounts = make_accounts(settings)
    # Young collections every 100 allocations: a few requests make some in each worker
    # (the serving default, 50,000, may make none in a run this short).
    env = server_env(
        settings, MODELYARD_USAGE_FLUSH_SECONDS="0.2", MODELYARD_GC_YOUNG_THRESHOLD="100"
    )
    user = {"authorization": f"Bearer {accounts.user_token}"}
    with (
        ChatOpenAI(keys={UPSTREAM_KEY}) as upstream,
        ServerProcess(env, tmp_path / "server", workers=2) as server,
    ):
        provider = {
            "name": "openai",
            "kind": "openai",
            "api_key": UPSTREAM_KEY,
            "base_url": upstream.base_url,
            "is_default": True,
        }
        staff = {"authorization": f"Bearer {accounts.staff_token}"}
        created = httpx.post(f"{server.url}/v2/admin/providers", json=provider, headers=staff)
        assert created.status_code == 201, created.text
        first, second = server.worker_pids()
        for worker, count in ((first, 3), (second, 2)):
            for _ in range(count):
                sent = request_on(
                    server, worker, "POST", "/v1/chat/completions", body=CHAT, headers=user
                )
                assert sent.status == 200, sent.body

        for worker in (first, second):
            text = poll_sync(
                lambda worker=worker: request_on(server, worker, "GET", "/metrics").body.decode(),
                lambda text: _samples(text, "modelyard_usage_records_written_total") == 5,
                timeout=15,
            )
            ok = [
                sample
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "modelyard_gateway_requests_total"
                and sample.labels.get("status") == "ok"
            ]
            assert sum(sample.value for sample in ok) == 5, text
            assert _samples(text, "modelyard_gateway_upstream_seconds_count") == 5
            assert _samples(text, "modelyard_gc_collections_total") > 0
        assert len(upstream.requests) == 5
