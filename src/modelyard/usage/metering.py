"""One gateway request's bookkeeping, around the upstream call.

:meth:`Metering.call` starts a :class:`MeteredCall`; each of its entry points —
:meth:`~MeteredCall.complete`, :meth:`~MeteredCall.embed`, :meth:`~MeteredCall.stream`,
and for legacy text completions :meth:`~MeteredCall.complete_text` and
:meth:`~MeteredCall.stream_text` — admits, calls and records in one step, so no caller
can forget a record.

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

:class:`MeteredChunks` is the stream: its end is recorded when it runs out, fails, or is
closed — also when it is closed before its first chunk was read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import anyio

from modelyard.errors import InternalServerError, ModelyardError
from modelyard.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from modelyard.gateway.service import Gateway, Served
from modelyard.limits.enforcer import Admission, LimitEnforcer
from modelyard.usage.completion import (
    CLIENT_CLOSED_STATUS,
    STREAM_FAILED_STATUS,
    CallDetails,
    CallOrigin,
    Completion,
    answer_text,
    choice_text,
    completion_text,
)
from modelyard.usage.events import UsageEvent
from modelyard.usage.pricing import Pricing, unpriced_refusal
from modelyard.usage.recorder import UsageRecorder
from modelyard.usage.tokens import count_message_tokens, count_tokens

__all__ = ["Closer", "MeteredCall", "MeteredChunks", "Metering"]

logger = logging.getLogger("modelyard.usage")

T = TypeVar("T")

Chunk = dict[str, Any]
Closer = Callable[[], Awaitable[None]]

#: At most this many model names' price verdicts are kept (names are the callers' input).
MAX_PRICE_VERDICTS = 10_000


class Metering:
    """One per application: the gateway, the limits, the usage recorder and the prices."""

    def __init__(
        self,
        gateway: Gateway,
        limits: LimitEnforcer,
        usage: UsageRecorder,
        default_prices: Mapping[str, tuple[Decimal, Decimal]] | None = None,
    ) -> None:
        self.gateway = gateway
        self.limits = limits
        self.usage = usage
        self.pricing = Pricing(gateway.index.price, default_prices)
        #: Model name → its unpriced targets, for the index revision ``_unpriced_revision``.
        self._unpriced: dict[str, list[str]] = {}
        self._unpriced_revision = -1

    async def unpriced(self, model: str) -> list[str]:
        """The ``kind/model`` targets of ``model`` that have no price (a 404 when unknown);
        kept until the model index changes."""
        index = self.gateway.index
        found = self._unpriced.get(model) if index.revision == self._unpriced_revision else None
        if found is not None:
            return found
        resolution = await index.resolve(self.gateway.database, model)
        found = self.pricing.unpriced(
            (step.kind.value, step.upstream_model) for step in resolution.steps
        )
        if index.revision != self._unpriced_revision:
            self._unpriced, self._unpriced_revision = {}, index.revision
        if len(self._unpriced) < MAX_PRICE_VERDICTS:
            self._unpriced[model] = found
        return found

    def call(self, origin: CallOrigin, details: CallDetails) -> MeteredCall:
        """One gateway call by ``origin``, for what ``details`` say."""
        return MeteredCall(self, origin, details)


class MeteredCall:
    """One gateway call: admitted, made and recorded by one of its entry points."""

    def __init__(self, metering: Metering, origin: CallOrigin, details: CallDetails) -> None:
        self.metering = metering
        self.gateway = metering.gateway
        self.origin = origin
        self.user = origin.user
        self.endpoint = details.endpoint
        self.model = details.model
        self.messages = details.messages
        self.prompts = details.prompts
        self.conversation_id = details.conversation_id
        self.on_complete = details.on_complete
        self.started = time.perf_counter()
        self.admission: Admission | None = None
        self.served: Served | None = None
        #: From a failed gateway call: how many upstream calls it made, to which provider.
        self.failed_attempts = 0
        self.failed_provider: str | None = None
        #: A stream's state: the upstream iterator, what was relayed, whether it ended.
        self._rest: AsyncIterator[Chunk] | None = None
        self._relayed: list[str] = []
        self._stream_usage: dict[str, Any] | None = None
        self._ended = False

    def prompt_tokens(self) -> int:
        texts = sum(count_tokens(self.model, prompt) for prompt in self.prompts)
        return count_message_tokens(self.model, self.messages) + texts

    async def _check_priced(self) -> None:
        """Refuse (402) a model without a price to a caller with a USD budget."""
        if not await self.metering.limits.has_budget(self.user.id, self.origin.api_token_id):
            return
        unpriced = await self.metering.unpriced(self.model)
        if unpriced:
            raise unpriced_refusal(self.model, unpriced)

    async def _admit(self, estimated_tokens: Callable[[], int]) -> None:
        """Check the price, reserve against the limits, or record the refusal and raise it."""
        try:
            await self._check_priced()
            self.admission = await self.metering.limits.admit(
                user=self.user,
                api_token_id=self.origin.api_token_id,
                estimated_tokens=estimated_tokens,
            )
        except ModelyardError as error:
            await self._fail(error)
            raise

    async def _call(self, call: Awaitable[T]) -> T:
        """Await the gateway; any failure is recorded and the reservation settled."""
        try:
            return await call
        except ModelyardError as error:
            await self._fail(error)
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
        """Admit, answer ``body`` as JSON through the gateway, and record it (a failure too)."""
        await self._admit(lambda: self.prompt_tokens() + (body.output_limit() or 0))
        answer, self.served = await self._call(
            self.gateway.chat(self.user, body, cache_ttl=cache_ttl)
        )
        await self._finish(status=200, usage=answer.get("usage"), content=answer_text(answer))
        return answer

    async def embed(self, body: EmbeddingRequest) -> dict[str, Any]:
        """Admit, embed ``body`` through the gateway, and record it (a failure too)."""
        texts = [body.input] if isinstance(body.input, str) else body.input
        await self._admit(
            lambda: sum(count_tokens(body.model, t) for t in texts if isinstance(t, str))
        )
        answer, self.served = await self._call(self.gateway.embed(self.user, body))
        await self._finish(status=200, usage=answer.get("usage"), content="")
        return answer

    async def stream(self, body: ChatCompletionRequest) -> MeteredChunks:
        """Admit, then start streaming ``body``; a failure before the first chunk is recorded,
        the stream's end when the returned chunks end or are closed."""
        await self._admit(lambda: self.prompt_tokens() + (body.output_limit() or 0))
        return await self._open(self.gateway.stream(self.user, body))

    async def complete_text(
        self, body: CompletionRequest, *, cache_ttl: int | None = None
    ) -> dict[str, Any]:
        """Admit, answer a legacy text completion through the gateway, and record it."""
        await self._admit(lambda: self._text_estimate(body))
        answer, self.served = await self._call(
            self.gateway.complete_text(self.user, body, cache_ttl=cache_ttl)
        )
        await self._finish(status=200, usage=answer.get("usage"), content=completion_text(answer))
        return answer

    async def stream_text(self, body: CompletionRequest) -> MeteredChunks:
        """Admit, then start streaming a legacy text completion, recorded as :meth:`stream`."""
        await self._admit(lambda: self._text_estimate(body))
        return await self._open(self.gateway.stream_text(self.user, body))

    def _text_estimate(self, body: CompletionRequest) -> int:
        choices = len(body.prompts()) * body.choices_per_prompt()
        return self.prompt_tokens() + body.output_limit() * choices

    async def _open(
        self, opening: Awaitable[tuple[Chunk | None, AsyncIterator[Chunk], Served]]
    ) -> MeteredChunks:
        first, rest, self.served = await self._call(opening)
        self._rest = rest
        return MeteredChunks(self, self._relay(first, rest))

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
            cost = self.metering.pricing.cost(
                served.provider, served.model, input_tokens, output_tokens
            )
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
        self.metering.usage.record(
            UsageEvent(
                endpoint=self.endpoint,
                model=self.model,
                status=status,
                user_id=self.user.id,
                api_token_id=self.origin.api_token_id,
                request_id=self.origin.request_id,
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
            self.gateway.account(
                served, usage_for_metrics, "ok" if status < 400 else "error", cost_usd=cost
            )
        if self.admission is not None:
            await self.metering.limits.settle(
                self.admission, tokens=input_tokens + output_tokens, cost_usd=cost
            )
            self.admission = None
        if self.on_complete is not None and (status < 400 or completion.stopped):
            await self.on_complete(completion)
        return completion

    async def _fail(self, error: ModelyardError) -> None:
        self.failed_attempts = error.attempts
        self.failed_provider = error.provider
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

    def _note(self, chunk: Chunk) -> None:
        self._stream_usage = chunk.get("usage") or self._stream_usage
        for choice in chunk.get("choices") or ():
            text = choice_text(choice)
            if text:
                self._relayed.append(text)

    async def _relay(
        self, first: Chunk | None, rest: AsyncIterator[Chunk]
    ) -> AsyncGenerator[Chunk, None]:
        """The stream's chunks (the first included); its end is recorded when it ends."""
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


class MeteredChunks:
    """A metered stream's chunks; closing it records its end and then runs its ``closers``.

    When the client goes away, the stream may be cancelled before it was ever iterated, so
    no ``finally`` of the relay would run: whoever serves the chunks must :meth:`aclose`
    them however it ended (the API's ``MeteredStream`` does). Closing twice does nothing.
    """

    def __init__(self, call: MeteredCall, chunks: AsyncGenerator[Chunk, None]) -> None:
        self.call = call
        self._chunks = chunks
        #: Run once the end is recorded, in order (e.g. a chat turn's clean-up).
        self.closers: list[Closer] = []
        self._closed = False

    def __aiter__(self) -> AsyncIterator[Chunk]:
        # The relay itself, so ``async for`` costs no extra await per chunk.
        return self._chunks

    async def __anext__(self) -> Chunk:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        """Close the relay, record the end (the client left, unless it ended already), then
        run the closers; shielded from the cancellation that may have caused it."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self._chunks.aclose()
                await self.call.end_stream()
            finally:
                for close in self.closers:
                    await close()
