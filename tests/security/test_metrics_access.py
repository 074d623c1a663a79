"""``/metrics``: a bearer token when configured, and label sets that callers cannot grow."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from modelyard.db.engine import Database
from modelyard.gateway.metrics import UNKNOWN
from modelyard.providers import records
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.helpers import bearer, make_token, make_user

METRICS_TOKEN = "metrics-scrape-token-0123456789abcdef"


@pytest.fixture
def upstream() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


def label_values(exposition: str, label: str, prefix: str = "modelyard_") -> set[str]:
    """Every value ``label`` takes in the samples of the metrics named ``prefix…``."""
    values = set()
    for family in text_string_to_metric_families(exposition):
        if family.name.startswith(prefix):
            values |= {s.labels[label] for s in family.samples if label in s.labels}
    return values


async def test_metrics_need_the_configured_bearer_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/metrics")).status_code == 200  # open when no token is set
    app.state.modelyard.settings.metrics_token = METRICS_TOKEN
    missing = await client.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "metrics_token_required"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert METRICS_TOKEN not in missing.text
    for header in (f"Bearer {METRICS_TOKEN}x", "Bearer wrong", f"Basic {METRICS_TOKEN}", "Bearer"):
        response = await client.get("/metrics", headers={"Authorization": header})
        assert response.status_code == 401, header
    scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    assert "modelyard_http_requests_total" in scraped.text


async def test_unresolved_model_names_add_no_label_values(
    client: httpx.AsyncClient, database: Database, upstream: ChatOpenAI
) -> None:
    async with database.sessions() as session:
        await records.create_provider(
            session,
            actor=None,
            values={
                "name": "fake openai",
                "kind": "openai",
                "api_key": OPENAI_KEY,
                "base_url": upstream.base_url,
                "is_default": True,
            },
        )
    token = await make_token(database, await make_user(database, "prober@example.com"))
    served = await client.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers=bearer(token),
    )
    assert served.status_code == 200, served.text
    before = (await client.get("/metrics")).text
    assert "gpt-4o-mini" in label_values(before, "model")

    for number in range(500):
        name = f"no-such-model-{secrets.token_hex(6)}"
        model = f"openai/{name}" if number % 2 else name  # the provider 404s, or no resolution
        response = await client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            headers=bearer(token),
        )
        assert response.status_code == 404, response.text
    after = (await client.get("/metrics")).text
    assert label_values(after, "model") - label_values(before, "model") <= {UNKNOWN}
    assert not any("no-such-model" in value for value in label_values(after, "model"))
    attempts = [
        sample
        for family in text_string_to_metric_families(after)
        if family.name == "modelyard_gateway_attempts"
        for sample in family.samples
        if sample.labels.get("model") == UNKNOWN and sample.labels.get("outcome") == "not_found"
    ]
    assert sum(sample.value for sample in attempts) == 250
    http_routes = label_values(after, "route", "modelyard_http")
    assert http_routes <= label_values(before, "route", "modelyard_http") | {"/metrics"}


async def test_odd_methods_and_paths_add_no_label_values(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    before = (await client.get("/metrics")).text
    for number in range(30):
        await client.request(f"PROBE{number}", f"/random/path/{secrets.token_hex(4)}")
    after = (await client.get("/metrics")).text
    methods = label_values(after, "method", "modelyard_http")
    assert methods - label_values(before, "method", "modelyard_http") <= {"OTHER"}
    assert not any(method.startswith("PROBE") for method in methods)
    assert label_values(after, "route", "modelyard_http") <= label_values(
        before, "route", "modelyard_http"
    ) | {"unmatched", "/metrics"}
