"""One gateway request's bookkeeping, around the upstream call.

Before: a caller with a USD budget is refused a model that has no price (402
``model_not_priced``, see :mod:`modelyard.usage.pricing`), then the caller's limits admit
the request (or refuse it with 429 / 402). After — at once for JSON answers, when the
stream ends for streams — exactly one usage record is queued, the limits are settled with
what was really used, the metrics counted, and an optional ``on_complete`` hook (the app's
chat history) is called. Tokens the provider did not report are counted here and the
record is marked estimated.

How a stream ends decides its record's status; a stream that ran is always charged for
its prompt and for the tokens relayed so far:

- ``200``: it ran to its end;
- ``499`` (``client_closed_request``, nginx's status for it): the client went away or
  stopped it (the web chat's Stop). ``on_complete`` is called too, with this status;
- ``502`` (``stream_interrupted``): the upstream failed midway.

:class:`MeteredStream` is the streaming response that guarantees the end is recorded,
even when the client leaves before the first chunk is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from modelyard.api.deps import app_state, identify_caller
from modelyard.db.models import User
from modelyard.errors import InternalServerError, ModelyardError
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.service import Served
from modelyard.limits.enforcer import Admission
from modelyard.usage.events import UsageEvent
from modelyard.usage.pricing import Pricing, unpriced_refusal
from modelyard.usage.tokens import count_message_tokens, count_tokens

__all__ = [
    "CLIENT_CLOSED_STATUS",
    "STREAM_FAILED_STATUS",
    "Completion",
    "MeteredStream",
    "Metering",
    "OnComplete",
]

logger = logging.getLogger("modelyard.usage")

T = TypeVar("T")

#: Status recorded for a stream that failed after it started (the client got 200).
STREAM_FAILED_STATUS = 502
#: Status recorded for a request the client abandoned (nginx's "client closed request").
CLIENT_CLOSED_STATUS = 499


@dataclass(frozen=True)
class Completion:
    """What a finished gateway call produced (``status`` 499: cut by the client)."""

    content: str
    input_tokens: int
    output_tokens: int
    estimated: bool
    cost_usd: Decimal
    model: str | None
    latency_ms: int
    status: int

    @property
    def stopped(self) -> bool:
        return self.status == CLIENT_CLOSED_STATUS


OnComplete = Callable[[Completion], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]


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
        self.pricing = Pricing(self.state.gateway.index.price, self.state.settings.default_prices)
        self.started = time.perf_counter()
        self.admission: Admission | None = None
        self.served: Served | None = None
        #: From a failed gateway call: how many upstream calls it made, to which provider.
        self.failed_attempts = 0
        self.failed_provider: str | None = None
        #: A stream's state: the upstream iterator, what was relayed, whether it ended.
        self._rest: AsyncIterator[dict[str, Any]] | None = None
        self._relayed: list[str] = []
        self._stream_usage: dict[str, Any] | None = None
        self._ended = False

    async def _api_token_id(self) -> int | None:
        caller = await identify_caller(self.request)
        return caller.api_token.id if caller is not None and caller.api_token else None

    def prompt_tokens(self) -> int:
        return count_message_tokens(self.model, self.messages)

    async def _check_priced(self, api_token_id: int | None) -> None:
        """Refuse (402) a model without a price to a caller with a USD budget."""
        if not await self.state.limits.has_budget(self.user.id, api_token_id):
            return
        resolution = await self.state.gateway.index.resolve(self.state.database, self.model)
        unpriced = self.pricing.unpriced(
            (step.kind.value, step.upstream_model) for step in resolution.steps
        )
        if unpriced:
            raise unpriced_refusal(self.model, unpriced)

    async def admit(self, estimated_tokens: int) -> None:
        """Check the price, reserve against the limits, or record the refusal and raise it."""
        try:
            api_token_id = await self._api_token_id()
            await self._check_priced(api_token_id)
            self.admission = await self.state.limits.admit(
                user=self.user, api_token_id=api_token_id, estimated_tokens=estimated_tokens
            )
        except ModelyardError as error:
            await self.fail(error)
            raise

    async def _call(self, call: Awaitable[T]) -> T:
        """Await the gateway; any failure is recorded and the reservation settled."""
        try:
            return await call
        except ModelyardError as error:
            await self.fail(error)
            raise
        except BaseException as error:
            cut = isinstance(error, asyncio.CancelledError)
            with anyio.CancelScope(shield=True):
                await self._finish(
                    status=CLIENT_CLOSED_STATUS if cut else InternalServerError.status_code,
                    usage=None,
                    content="",
                    error_code="client_closed_request" if cut else "internal_error",
                )
            raise

    async def complete(
        self, body: ChatCompletionRequest, *, cache_ttl: int | None
    ) -> dict[str, Any]:
        """Admit, then answer ``body`` as JSON through the gateway (a failure is recorded)."""
        await self.admit(self.prompt_tokens() + (body.output_limit() or 0))
        answer, self.served = await self._call(
            self.state.gateway.chat(self.user, body, cache_ttl=cache_ttl)
        )
        return answer

    async def embed(self, body: EmbeddingRequest) -> dict[str, Any]:
        """Admit, embed ``body`` through the gateway and record it (a failure too)."""
        texts = [body.input] if isinstance(body.input, str) else body.input
        await self.admit(sum(count_tokens(body.model, t) for t in texts if isinstance(t, str)))
        answer, self.served = await self._call(self.state.gateway.embed(self.user, body))
        await self.succeed(usage=answer.get("usage"), content="")
        return answer

    async def open_stream(
        self, body: ChatCompletionRequest
    ) -> tuple[dict[str, Any] | None, AsyncIterator[dict[str, Any]]]:
        """Admit, then start streaming ``body`` (a failure before the first chunk is recorded)."""
        await self.admit(self.prompt_tokens() + (body.output_limit() or 0))
        first, rest, self.served = await self._call(self.state.gateway.stream(self.user, body))
        self._rest = rest
        return first, rest

    def _tokens(
        self, status: int, usage: dict[str, Any] | None, content: str, *, ran: bool
    ) -> tuple[int, int, bool]:
        """Input and output tokens to charge, and whether they were reported."""
        reported = bool(usage) and (status < 400 or ran)
        if reported and usage:
            input_tokens = int(usage.get("prompt_tokens") or 0)
            output_tokens = int(usage.get("completion_tokens") or 0)
            if status >= 400:  # cut: at least what was relayed
                output_tokens = max(output_tokens, count_tokens(self.model, content))
            return input_tokens, output_tokens, True
        if status < 400 or ran:
            return self.prompt_tokens(), count_tokens(self.model, content), False
        return 0, 0, False

    async def _finish(
        self,
        *,
        status: int,
        usage: dict[str, Any] | None,
        content: str,
        error_code: str | None = None,
        ran: bool = False,
    ) -> Completion:
        """Record, settle and count the request; ``ran``: a stream that started."""
        served = self.served
        input_tokens, output_tokens, reported = self._tokens(status, usage, content, ran=ran)
        charged = status < 400 or ran
        cached = served is not None and served.cache == "hit"
        cost = Decimal(0)
        if served is not None and not cached:
            cost = self.pricing.cost(served.provider, served.model, input_tokens, output_tokens)
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
                estimated=not reported and charged,
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
        if self.on_complete is not None and (status < 400 or completion.stopped):
            await self.on_complete(completion)
        return completion

    async def succeed(self, *, usage: dict[str, Any] | None, content: str) -> Completion:
        return await self._finish(status=200, usage=usage, content=content)

    async def fail(self, error: ModelyardError) -> None:
        self.failed_attempts = int(getattr(error, "attempts", 0))
        self.failed_provider = getattr(error, "provider", None)
        await self._finish(status=error.status_code, usage=None, content="", error_code=error.code)

    async def end_stream(
        self, status: int = CLIENT_CLOSED_STATUS, code: str | None = "client_closed_request"
    ) -> None:
        """Record how the stream ended (once; later calls do nothing) and close the upstream.

        By default: the client went away. A chat turn that cannot be saved after a cut is
        logged (nobody is left to tell).
        """
        if self._ended:
            return
        self._ended = True
        try:
            await self._finish(
                status=status,
                usage=self._stream_usage,
                content="".join(self._relayed),
                error_code=code,
                ran=True,
            )
        except ModelyardError:
            if status != CLIENT_CLOSED_STATUS:
                raise
            logger.exception("A stopped stream's bookkeeping failed")
        finally:
            closer = getattr(self._rest, "aclose", None)
            if closer is not None:
                await closer()

    def _note(self, chunk: dict[str, Any]) -> None:
        self._stream_usage = chunk.get("usage") or self._stream_usage
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                self._relayed.append(text)

    async def stream(
        self, first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[dict[str, Any]]:
        """The stream's chunks (the first included); its end is recorded when it ends."""
        self._rest = rest
        status: int = CLIENT_CLOSED_STATUS
        code: str | None = "client_closed_request"
        try:
            if first is not None:
                self._note(first)
                yield first
            async for chunk in rest:
                self._note(chunk)
                yield chunk
            status, code = 200, None
        except Exception:
            status, code = STREAM_FAILED_STATUS, "stream_interrupted"
            raise
        finally:
            # Cancelled (the client left): the bookkeeping must still run to its end.
            with anyio.CancelScope(shield=True):
                await self.end_stream(status, code)


class MeteredStream(StreamingResponse):
    """A streamed answer whose end is always recorded, and its ``closers`` always run.

    When the client goes away (or presses Stop), Starlette cancels the stream wherever it
    waits — possibly before the body was ever started, so no ``finally`` of the body would
    run. This response closes its body and runs ``meter.end_stream`` and then each closer
    (in order, shielded from the cancellation) once it is done, however it ended.
    """

    def __init__(self, content: AsyncIterator[Any], *, meter: Metering, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.closers: list[Closer] = [meter.end_stream]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                closer = getattr(self.body_iterator, "aclose", None)
                if closer is not None:
                    await closer()
                for close in self.closers:
                    await close()
