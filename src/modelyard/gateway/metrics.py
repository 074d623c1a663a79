"""The gateway's Prometheus metrics: requests, attempts per key (by fingerprint, never the
key), failovers, cache hits, tokens and cost."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "modelyard_gateway_requests",
            "Gateway requests by route, provider, model and outcome",
            ["route", "provider", "model", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "modelyard_gateway_upstream_seconds",
            "Time waiting for the upstream that answered",
            ["provider", "model"],
            registry=registry,
        )
        self.attempts = Counter(
            "modelyard_gateway_attempts",
            "Upstream attempts by provider, model, key fingerprint and outcome",
            ["provider", "model", "key", "outcome"],
            registry=registry,
        )
        self.failovers = Counter(
            "modelyard_gateway_failovers",
            "Moves to the next target, by reason",
            ["reason"],
            registry=registry,
        )
        self.cache = Counter(
            "modelyard_gateway_cache",
            "Response cache lookups by result",
            ["result"],
            registry=registry,
        )
        self.tokens = Counter(
            "modelyard_gateway_tokens",
            "Tokens by provider, model and direction",
            ["provider", "model", "direction"],
            registry=registry,
        )
        self.cost = Counter(
            "modelyard_gateway_cost_usd",
            "Cost in USD from the catalog's prices",
            ["provider", "model"],
            registry=registry,
        )
