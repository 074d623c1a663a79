"""HTTP details of a gateway answer: its JSON response, its headers, the cache header."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import Request, Response

from modelyard.errors import BadRequestError
from modelyard.gateway.service import Served

__all__ = [
    "DEFAULT_REQUEST_CACHE_TTL",
    "gateway_headers",
    "json_response",
    "requested_cache_ttl",
]

#: ``x-modelyard-cache: true`` caches a request for this long (seconds).
DEFAULT_REQUEST_CACHE_TTL = 600


def json_response(body: Any, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def requested_cache_ttl(request: Request) -> int | None:
    """The cache TTL the ``x-modelyard-cache`` header asks for (``None``: the route's).

    ``true`` → the default TTL, a number → that many seconds, ``false``/``0`` → no cache.
    """
    value = request.headers.get("x-modelyard-cache")
    if value is None:
        return None
    value = value.strip().lower()
    if value in ("true", "yes", "on"):
        return DEFAULT_REQUEST_CACHE_TTL
    if value in ("false", "no", "off"):
        return 0
    if value.isdigit():
        return int(value)
    raise BadRequestError(
        "x-modelyard-cache must be true, false or a number of seconds.", param="x-modelyard-cache"
    )


def gateway_headers(request: Request, served: Served | None) -> dict[str, str]:
    """The served-by headers plus ``x-modelyard-overhead-ms``: time in the gateway itself."""
    assert served is not None, "headers are asked for after the gateway answered"
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    overhead = (time.perf_counter() - started - served.upstream_seconds) * 1000
    return {**served.headers(), "x-modelyard-overhead-ms": f"{max(0.0, overhead):.2f}"}
