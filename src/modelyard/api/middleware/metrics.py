"""Prometheus HTTP metrics of one application, labelled by route template (not raw path).

Every label comes from a closed set, whatever a client sends: the route template (or
``unmatched``), a standard method (others count as ``OTHER``) and the status code.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["HttpMetrics"]

#: Methods counted under their own name.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """The HTTP metrics of one application, in its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "modelyard_http_requests",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "modelyard_http_request_duration_seconds",
            "Time to the end of the response",
            ["method", "route"],
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)
