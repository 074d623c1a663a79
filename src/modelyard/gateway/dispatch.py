"""Trying targets in turn: the one place that decides whether to go on to the next one.

Before any call, every target's adapter checks the model id (:meth:`Adapter.check_model`):
a target that cannot address it is left out, and when none can, the request is a 400
(``invalid_model``) that reached no provider and touched no breaker.

A rate-limited or rejected key, an upstream failure, a timeout or a dropped connection
moves on to the next (endpoint, key) target; a client error (400, 404, 422) or a
parameter the target cannot honour is returned at once. When every target failed, the
client gets the last error with the list of what was tried (labels, never keys).
Streams fail over only before their first chunk.

Breakers (:func:`breaker_id`): a client error (the request's own fault, see
:data:`~modelyard.gateway.upstream_errors.CLIENT_CATEGORIES`) is never recorded against a
target; a user's own key has a breaker of that user's, so its failures never cool down an
admin or system key, nor anyone else's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from modelyard.errors import (
    BadGatewayError,
    BadRequestError,
    ModelyardError,
    ServiceUnavailableError,
)
from modelyard.gateway import fan_out
from modelyard.gateway.adapters.base import Target
from modelyard.gateway.adapters.registry import AdapterRegistry
from modelyard.gateway.anthropic_native import request_for
from modelyard.gateway.cooldown import (
    CooldownStore,
    MemoryCooldowns,
    key_fingerprint,
    target_id,
)
from modelyard.gateway.metrics import GatewayMetrics
from modelyard.gateway.parameter_policy import ParameterPolicy
from modelyard.gateway.responses_native import request_for as responses_request_for
from modelyard.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from modelyard.gateway.upstream_errors import CLIENT_CATEGORIES, UpstreamError, client_error

__all__ = ["Attempt", "Dispatcher", "Outcome", "breaker_id", "should_failover"]

logger = logging.getLogger("modelyard.gateway")

T = TypeVar("T")
#: A request the dispatcher sends: chat or a legacy text completion.
R = TypeVar("R", ChatCompletionRequest, CompletionRequest)

#: Error categories after which the next target is tried.
FAILOVER_CATEGORIES = frozenset(
    {"rate_limited", "unauthorized", "not_found", "server", "timeout", "connection", "protocol"}
)


#: Error categories after which a whole new pass over the targets may help.
RETRY_CATEGORIES = frozenset({"rate_limited", "server", "timeout", "connection"})
#: Passes over the targets (the first one included).
MAX_PASSES = 3
#: Backoff between passes: BASE * 2**pass, times a jitter factor in [0.5, 1.5), capped.
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 5.0
#: The whole request, every pass and attempt included, ends after this long.
DEFAULT_DEADLINE_SECONDS = 120.0


def backoff_delay(attempt_pass: int) -> float:
    """Exponential backoff with jitter before pass ``attempt_pass + 1``."""
    base = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt_pass)
    return base * random.uniform(0.5, 1.5)


def breaker_id(target: Target) -> str:
    """The circuit breaker of a target: its provider kind and endpoint, model and key —
    and, for a user's own key, that user.

    The endpoint (API and base URL) is part of it: the same key or no key at two servers
    (two vLLM hosts, say) are two breakers. A user's key is scoped to its owner, so what
    it does cools down nothing shared, even when another user or an admin holds the same
    key string.
    """
    endpoint = hashlib.blake2b(f"{target.api} {target.base_url}".encode(), digest_size=4)
    kind = f"{target.credential.kind.value}@{endpoint.hexdigest()}"
    credential = target.credential
    scope = None
    if credential.source == "user":
        scope = f"user-{credential.owner_id}" if credential.owner_id is not None else "user"
    return target_id(kind, target.model, target.api_key, scope)


def should_failover(error: UpstreamError) -> bool:
    """Whether ``error`` from one target lets the next target be tried."""
    return error.category in FAILOVER_CATEGORIES


@dataclass(frozen=True)
class Attempt:
    """One try, as reported to the client and the logs (no secrets)."""

    target: str
    outcome: str
    #: False for a target skipped while cooling down.
    called: bool = True


@dataclass
class Outcome(Generic[T]):
    result: T
    target: Target
    attempts: list[Attempt] = field(default_factory=list)
    upstream_seconds: float = 0.0
    #: Parameters left out for the target that answered (a route's ``drop`` policy).
    dropped_params: tuple[str, ...] = ()


def _describe(target: Target) -> str:
    return f"{target.api}:{target.model} with {target.credential.label}"


def _kind(target: Target | None) -> str | None:
    return target.credential.kind.value if target else None


def _exhausted(
    attempts: list[Attempt], last: UpstreamError | None, provider: str, target: Target | None
) -> ModelyardError:
    """The error after every target failed; it carries what was tried, for the request's
    usage record (no secrets)."""
    called = [attempt for attempt in attempts if attempt.called]
    kind = _kind(target)
    if last is None:
        return ServiceUnavailableError(
            f"{provider}: every target is cooling down after recent failures; try again shortly.",
            code="all_targets_cooling_down",
            headers={"Retry-After": "1"},
            provider=kind,
        )
    if len(called) == 1:
        return client_error(last, provider, attempts=1, kind=kind)
    tried = "; ".join(f"{a.target}: {a.outcome}" for a in attempts)
    message = f"Every target failed ({len(called)} tried): {tried}"
    headers = {}
    if last.category == "rate_limited":
        headers["Retry-After"] = str(max(1, round(last.retry_after or 1)))
    if last.category in ("rate_limited", "timeout"):
        return ServiceUnavailableError(
            message,
            code="all_targets_failed",
            headers=headers,
            attempts=len(called),
            provider=kind,
        )
    return BadGatewayError(message, code="all_targets_failed", attempts=len(called), provider=kind)


class Dispatcher:
    """Runs one request against its targets in order."""

    def __init__(
        self,
        adapters: AdapterRegistry,
        *,
        cooldowns: CooldownStore | None = None,
        metrics: GatewayMetrics | None = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self.adapters = adapters
        self.cooldowns: CooldownStore = cooldowns or MemoryCooldowns()
        self.metrics = metrics
        self.deadline = deadline

    def _count(self, target: Target, outcome: str) -> None:
        if self.metrics is not None:
            key = key_fingerprint(target.api_key)
            self.metrics.attempts.labels(
                target.credential.kind.value, target.model, key, outcome
            ).inc()

    def _addressable(self, targets: Sequence[Target]) -> list[Target]:
        """The targets whose adapter can address their model id; a 400 when none can."""
        usable: list[Target] = []
        refusal: BadRequestError | None = None
        for target in targets:
            try:
                self.adapters.get(target.api).check_model(target.model)
            except BadRequestError as error:
                refusal = refusal or error
                continue
            usable.append(target)
        if refusal is not None and not usable:
            raise refusal
        return usable

    async def _first_success(
        self,
        targets: Sequence[Target],
        provider: str,
        call: Callable[[Target], Awaitable[T]],
    ) -> Outcome[T]:
        """Walk the targets in order, passes apart by a backoff, within the deadline."""
        targets = self._addressable(targets)
        deadline = time.monotonic() + self.deadline
        attempts: list[Attempt] = []
        last: UpstreamError | None = None
        waited = 0.0
        for attempt_pass in range(MAX_PASSES):
            transient = False
            for position, target in enumerate(targets, start=1):
                breaker = breaker_id(target)
                where = f"key {position}/{len(targets)} ({target.credential.label})"
                if not await self.cooldowns.allow(breaker):
                    logger.info("Skipping %s for model %s: cooling down", where, target.model)
                    attempts.append(Attempt(_describe(target), "skipped: cooling down", False))
                    self._count(target, "skipped")
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                logger.info("Trying %s for model %s", where, target.model)
                started = time.perf_counter()
                try:
                    result = await call(replace(target, timeout=min(target.timeout, remaining)))
                except UpstreamError as error:
                    waited += time.perf_counter() - started
                    attempts.append(Attempt(_describe(target), error.message))
                    last = error
                    self._count(target, error.category)
                    if error.category in CLIENT_CATEGORIES:
                        await self.cooldowns.release(breaker)  # the request's fault
                    else:
                        await self.cooldowns.record_failure(
                            breaker, error.category, error.retry_after
                        )
                    if not should_failover(error):
                        called = sum(1 for attempt in attempts if attempt.called)
                        raise client_error(
                            error, provider, attempts=called, kind=_kind(target)
                        ) from None
                    logger.warning("%s %s - trying next target", where, _reason(error))
                    if self.metrics is not None:
                        self.metrics.failovers.labels(error.category).inc()
                    transient = transient or error.category in RETRY_CATEGORIES
                    continue
                waited += time.perf_counter() - started
                self._count(target, "ok")
                await self.cooldowns.record_success(breaker)
                attempts.append(Attempt(_describe(target), "ok"))
                return Outcome(result, target, attempts, waited)
            pause = backoff_delay(attempt_pass)
            if not transient or time.monotonic() + pause >= deadline:
                break
            logger.info("Every target failed; trying again in %.2f s", pause)
            await asyncio.sleep(pause)
        raise _exhausted(attempts, last, provider, targets[-1] if targets else None)

    async def chat(
        self,
        request: ChatCompletionRequest,
        targets: Sequence[Target],
        provider: str,
        *,
        unsupported_params: str = "error",
    ) -> Outcome[dict[str, Any]]:
        """The first target's answer (``n`` choices: :mod:`~modelyard.gateway.fan_out`),
        parameters it cannot honour handled by the route's ``unsupported_params``."""
        return await self._answer(
            request,
            targets,
            provider,
            unsupported_params,
            lambda sent, target: fan_out.chat(
                self.adapters.get(target.api), _for_target(sent, target), target
            ),
        )

    async def count_tokens(
        self, request: ChatCompletionRequest, targets: Sequence[Target], provider: str
    ) -> Outcome[int | None] | None:
        """Input tokens as the first target's provider counts them, failing over among the
        targets whose adapters can count; ``None`` when the first cannot (estimate them)."""
        counting = [t for t in targets if self.adapters.get(t.api).counts_tokens]
        if not targets or targets[0] not in counting:
            return None
        return await self._first_success(
            counting,
            provider,
            lambda target: self.adapters.get(target.api).count_tokens(request, target),
        )

    async def embed(
        self, request: EmbeddingRequest, targets: Sequence[Target], provider: str
    ) -> Outcome[dict[str, Any]]:
        return await self._first_success(
            targets, provider, lambda target: self.adapters.get(target.api).embed(request, target)
        )

    async def complete_text(
        self,
        request: CompletionRequest,
        targets: Sequence[Target],
        provider: str,
        *,
        unsupported_params: str = "error",
    ) -> Outcome[dict[str, Any]]:
        """A legacy text completion, failing over and handling parameters as chat does."""
        return await self._answer(
            request,
            targets,
            provider,
            unsupported_params,
            lambda sent, target: self.adapters.get(target.api).complete_text(sent, target),
        )

    async def open_stream(
        self,
        request: ChatCompletionRequest,
        targets: Sequence[Target],
        provider: str,
        *,
        unsupported_params: str = "error",
    ) -> Outcome[tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]]]]:
        """Start a stream, failing over until a first chunk arrives (or the stream ends)."""
        return await self._open_with_policy(
            request,
            targets,
            provider,
            unsupported_params,
            lambda sent, target: fan_out.stream(
                self.adapters.get(target.api), _for_target(sent, target), target
            ),
        )

    async def open_text_stream(
        self,
        request: CompletionRequest,
        targets: Sequence[Target],
        provider: str,
        *,
        unsupported_params: str = "error",
    ) -> Outcome[tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]]]]:
        """Start a streamed text completion, as :meth:`open_stream` does."""
        return await self._open_with_policy(
            request,
            targets,
            provider,
            unsupported_params,
            lambda sent, target: self.adapters.get(target.api).stream_text(sent, target),
        )

    async def _answer(
        self,
        request: R,
        targets: Sequence[Target],
        provider: str,
        unsupported_params: str,
        send: Callable[[R, Target], Awaitable[dict[str, Any]]],
    ) -> Outcome[dict[str, Any]]:
        """The first target's JSON answer to ``send``, under the route's parameter policy."""
        policy = ParameterPolicy(unsupported_params)
        outcome = await self._first_success(
            targets, provider, lambda target: policy.call(lambda sent: send(sent, target), request)
        )
        outcome.dropped_params = policy.dropped
        return outcome

    async def _open_with_policy(
        self,
        request: R,
        targets: Sequence[Target],
        provider: str,
        unsupported_params: str,
        start: Callable[[R, Target], AsyncIterator[dict[str, Any]]],
    ) -> Outcome[tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]]]]:
        """A stream started on the first target that sends a first chunk (or ends), under
        the route's parameter policy."""
        policy = ParameterPolicy(unsupported_params)
        outcome = await self._first_success(
            targets,
            provider,
            lambda target: policy.open(lambda sent: start(sent, target), request),
        )
        outcome.dropped_params = policy.dropped
        return outcome


def _for_target(request: ChatCompletionRequest, target: Target) -> ChatCompletionRequest:
    """``request`` with only the native parts ``target`` speaks (Messages or Responses)."""
    return request_for(responses_request_for(request, target), target.api)


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
