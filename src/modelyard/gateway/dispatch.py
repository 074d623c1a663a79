"""Trying targets in turn: the one place that decides whether to go on to the next one.

A rate-limited or rejected key, an upstream failure, a timeout or a dropped connection
moves on to the next (endpoint, key) target; a client error (400, 404, 422) or a
parameter the target cannot honour is returned at once. When every target failed, the
client gets the last error with the list of what was tried (labels, never keys).
Streams fail over only before their first chunk.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from modelyard.errors import BadGatewayError, ModelyardError, ServiceUnavailableError
from modelyard.gateway.adapters.base import Target
from modelyard.gateway.adapters.registry import AdapterRegistry
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.upstream_errors import UpstreamError, client_error

__all__ = ["Attempt", "Dispatcher", "Outcome", "should_failover"]

logger = logging.getLogger("modelyard.gateway")

T = TypeVar("T")

#: Error categories after which the next target is tried.
FAILOVER_CATEGORIES = frozenset(
    {"rate_limited", "unauthorized", "not_found", "server", "timeout", "connection", "protocol"}
)


def should_failover(error: UpstreamError) -> bool:
    """Whether ``error`` from one target lets the next target be tried."""
    return error.category in FAILOVER_CATEGORIES


@dataclass(frozen=True)
class Attempt:
    """One try, as reported to the client and the logs (no secrets)."""

    target: str
    outcome: str


@dataclass
class Outcome(Generic[T]):
    result: T
    target: Target
    attempts: list[Attempt] = field(default_factory=list)
    upstream_seconds: float = 0.0


def _describe(target: Target) -> str:
    return f"{target.api}:{target.model} with {target.credential.label}"


def _exhausted(
    attempts: list[Attempt], last: UpstreamError | None, provider: str
) -> ModelyardError:
    if last is None:
        return ServiceUnavailableError(f"No usable target for {provider}.", code="no_target")
    if len(attempts) == 1:
        return client_error(last, provider)
    tried = "; ".join(f"{a.target}: {a.outcome}" for a in attempts)
    message = f"Every target failed ({len(attempts)} tried): {tried}"
    headers = {}
    if last.category == "rate_limited":
        headers["Retry-After"] = str(max(1, round(last.retry_after or 1)))
    if last.category in ("rate_limited", "timeout"):
        return ServiceUnavailableError(message, code="all_targets_failed", headers=headers)
    return BadGatewayError(message, code="all_targets_failed")


class Dispatcher:
    """Runs one request against its targets in order."""

    def __init__(self, adapters: AdapterRegistry) -> None:
        self.adapters = adapters

    async def _first_success(
        self,
        targets: Sequence[Target],
        provider: str,
        call: Callable[[Target], Awaitable[T]],
    ) -> Outcome[T]:
        attempts: list[Attempt] = []
        last: UpstreamError | None = None
        for position, target in enumerate(targets, start=1):
            logger.info(
                "Trying %s %d/%d for model %s",
                target.credential.label,
                position,
                len(targets),
                target.model,
            )
            try:
                result = await call(target)
            except UpstreamError as error:
                attempts.append(Attempt(_describe(target), error.message))
                last = error
                if not should_failover(error):
                    raise client_error(error, provider) from None
                logger.warning(
                    "%s %d/%d %s - trying next target",
                    target.credential.label,
                    position,
                    len(targets),
                    _reason(error),
                )
                continue
            attempts.append(Attempt(_describe(target), "ok"))
            return Outcome(result, target, attempts)
        raise _exhausted(attempts, last, provider)

    async def chat(
        self, request: ChatCompletionRequest, targets: Sequence[Target], provider: str
    ) -> Outcome[dict[str, Any]]:
        return await self._first_success(
            targets, provider, lambda target: self.adapters.get(target.api).chat(request, target)
        )

    async def embed(
        self, request: EmbeddingRequest, targets: Sequence[Target], provider: str
    ) -> Outcome[dict[str, Any]]:
        return await self._first_success(
            targets, provider, lambda target: self.adapters.get(target.api).embed(request, target)
        )

    async def open_stream(
        self, request: ChatCompletionRequest, targets: Sequence[Target], provider: str
    ) -> Outcome[tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]]]]:
        """Start a stream, failing over until a first chunk arrives (or the stream ends)."""

        async def first_chunk(
            target: Target,
        ) -> tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]]]:
            stream = aiter(self.adapters.get(target.api).stream_chat(request, target))
            try:
                return await anext(stream), stream
            except StopAsyncIteration:
                return None, stream

        return await self._first_success(targets, provider, first_chunk)


def _reason(error: UpstreamError) -> str:
    return {
        "rate_limited": "rate limited",
        "unauthorized": "unauthorized - invalid key",
        "not_found": "model not found there",
        "timeout": "timed out",
        "connection": "connection failed",
        "server": "upstream error",
        "protocol": "malformed answer",
    }.get(error.category, error.category)
