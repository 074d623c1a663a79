"""One gateway request's bookkeeping, around the upstream call.

Before: the caller's limits admit the request (or refuse it with 429 / 402). After — at
once for JSON answers, when the stream ends for streams — exactly one usage record is
queued (success or failure), the limits are settled with what was really used, the
metrics counted, and an optional ``on_complete`` hook (the app's chat history) is called.
Tokens the provider did not report are counted here and the record is marked estimated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import Request

from modelyard.api.deps import app_state, identify_caller
from modelyard.db.models import User
from modelyard.errors import ModelyardError
from modelyard.gateway.schemas import ChatCompletionRequest
from modelyard.gateway.service import Served
from modelyard.limits.enforcer import Admission
from modelyard.usage.events import UsageEvent
from modelyard.usage.tokens import count_message_tokens, count_tokens

__all__ = ["Completion", "Metering", "OnComplete"]

logger = logging.getLogger("modelyard.usage")

#: Status recorded for a stream that failed after it started (the client got 200).
STREAM_FAILED_STATUS = 502


@dataclass(frozen=True)
class Completion:
    """What a finished gateway call produced."""

    content: str
    input_tokens: int
    output_tokens: int
    estimated: bool
    cost_usd: Decimal
    model: str | None
    latency_ms: int
    status: int


OnComplete = Callable[[Completion], Awaitable[None]]


def answer_text(answer: dict[str, Any]) -> str:
    """The first choice's text of an OpenAI completion."""
    choices = answer.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


class Metering:
    def __init__(
        self,
        request: Request,
        user: User,
        *,
        endpoint: str,
        model: str,
        messages: Sequence[Any] = (),
        conversation_id: int | None = None,
        on_complete: OnComplete | None = None,
    ) -> None:
        self.state = app_state(request)
        self.request = request
        self.user = user
        self.endpoint = endpoint
        self.model = model
        self.messages = messages
        self.conversation_id = conversation_id
        self.on_complete = on_complete
        self.started = time.perf_counter()
        self.admission: Admission | None = None
        self.served: Served | None = None
        #: From a failed gateway call: how many upstream calls it made, to which provider.
        self.failed_attempts = 0
        self.failed_provider: str | None = None

    async def _api_token_id(self) -> int | None:
        caller = await identify_caller(self.request)
        return caller.api_token.id if caller is not None and caller.api_token else None

    def prompt_tokens(self) -> int:
        return count_message_tokens(self.model, self.messages)

    async def admit(self, estimated_tokens: int) -> None:
        """Reserve against the limits, or record the refusal and raise it."""
        try:
            self.admission = await self.state.limits.admit(
                user=self.user,
                api_token_id=await self._api_token_id(),
                estimated_tokens=estimated_tokens,
            )
        except ModelyardError as error:
            await self.fail(error)
            raise

    async def complete(
        self, body: ChatCompletionRequest, *, cache_ttl: int | None
    ) -> dict[str, Any]:
        """Admit, then answer ``body`` as JSON through the gateway (a failure is recorded)."""
        await self.admit(self.prompt_tokens() + (body.output_limit() or 0))
        try:
            answer, self.served = await self.state.gateway.chat(
                self.user, body, cache_ttl=cache_ttl
            )
        except ModelyardError as error:
            await self.fail(error)
            raise
        return answer

    async def open_stream(
        self, body: ChatCompletionRequest
    ) -> tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]]]:
        """Admit, then start streaming ``body`` (a failure before the first chunk is recorded)."""
        await self.admit(self.prompt_tokens() + (body.output_limit() or 0))
        try:
            first, rest, self.served = await self.state.gateway.stream(self.user, body)
        except ModelyardError as error:
            await self.fail(error)
            raise
        return first, rest

    async def _finish(
        self,
        *,
        status: int,
        usage: dict[str, Any] | None,
        content: str,
        error_code: str | None = None,
    ) -> Completion:
        served = self.served
        reported = bool(usage) and status < 400
        if reported and usage:
            input_tokens = int(usage.get("prompt_tokens") or 0)
            output_tokens = int(usage.get("completion_tokens") or 0)
        elif status < 400:
            input_tokens = self.prompt_tokens()
            output_tokens = count_tokens(self.model, content)
        else:
            input_tokens = output_tokens = 0
        cached = served is not None and served.cache == "hit"
        cost = Decimal(0)
        if served is not None and not cached:
            price = self.state.gateway.index.price(served.provider, served.model)
            if price is not None:
                cost = (input_tokens * price[0] + output_tokens * price[1]) / Decimal(1_000_000)
        latency_ms = round((time.perf_counter() - self.started) * 1000)
        completion = Completion(
            content,
            input_tokens,
            output_tokens,
            not reported,
            cost,
            served.model if served else None,
            latency_ms,
            status,
        )
        self.state.usage.record(
            UsageEvent(
                endpoint=self.endpoint,
                model=self.model,
                status=status,
                user_id=self.user.id,
                api_token_id=await self._api_token_id(),
                request_id=self.request.scope.get("state", {}).get("request_id"),
                route=served.resolution.route if served else None,
                provider=served.provider if served else self.failed_provider,
                upstream_model=served.model if served else None,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost,
                latency_ms=latency_ms,
                attempts=served.attempts if served else self.failed_attempts,
                error_code=error_code,
                cache_hit=cached,
                estimated=not reported and status < 400,
                conversation_id=self.conversation_id,
            )
        )
        if served is not None:
            usage_for_metrics = {"prompt_tokens": input_tokens, "completion_tokens": output_tokens}
            self.state.gateway.account(served, usage_for_metrics, "ok" if status < 400 else "error")
        if self.admission is not None:
            await self.state.limits.settle(
                self.admission, tokens=input_tokens + output_tokens, cost_usd=cost
            )
            self.admission = None
        if self.on_complete is not None and status < 400:
            await self.on_complete(completion)
        return completion

    async def succeed(self, *, usage: dict[str, Any] | None, content: str) -> Completion:
        return await self._finish(status=200, usage=usage, content=content)

    async def fail(self, error: ModelyardError) -> None:
        self.failed_attempts = int(getattr(error, "attempts", 0))
        self.failed_provider = getattr(error, "provider", None)
        await self._finish(status=error.status_code, usage=None, content="", error_code=error.code)

    async def stream(
        self, first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[dict[str, Any]]:
        """The stream's chunks (the first included); finished when the stream ends."""
        usage: dict[str, Any] | None = None
        pieces: list[str] = []
        status: int = STREAM_FAILED_STATUS
        code: str | None = "stream_interrupted"

        def note(chunk: dict[str, Any]) -> None:
            nonlocal usage
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    pieces.append(text)

        try:
            if first is not None:
                note(first)
                yield first
            async for chunk in rest:
                note(chunk)
                yield chunk
            status, code = 200, None
        finally:
            await self._finish(status=status, usage=usage, content="".join(pieces), error_code=code)
            closer = getattr(rest, "aclose", None)
            if closer is not None:
                await closer()
