"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import httpx


async def test_health_and_readiness(client: httpx.AsyncClient, backend: str) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == ("sqlite" if backend == "sqlite" else "postgresql")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.delete("/v2/tokens/41")
    await client.delete("/v2/tokens/42")
    body = (await client.get("/metrics")).text
    assert 'modelyard_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in body
    assert (
        'modelyard_http_requests_total{method="DELETE",route="/v2/tokens/{token_id}",'
        'status="401"} 2.0' in body
    )
    assert "modelyard_http_request_duration_seconds_bucket" in body
