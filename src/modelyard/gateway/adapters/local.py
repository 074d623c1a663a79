"""Local models: Hugging Face models run in this process, behind the OpenAI format.

The ``local`` provider kind names a model by Hub id, directory, trained-model name or
built-in alias (``all-MiniLM-L6-v2``), resolved for the caller by the gateway
(:func:`~modelyard.local.access.resolve_local`, into ``Target.local``); the gateway's
:class:`~modelyard.local.manager.ModelManager` loads it once and runs it in worker threads.
The target's key, when there is one, is a Hugging Face token used for Hub downloads.

Chat (JSON and streaming) with causal LMs and seq2seq models: ``temperature``, ``top_p``,
``max_tokens`` / ``max_completion_tokens``, ``stop`` and ``seed`` are honoured; usage is
counted by the model's tokenizer; ``finish_reason`` is ``stop`` or ``length``. Refused
with a 400: tools and tool messages, non-text content and every other parameter
(``n`` > 1 is made by the gateway, one call per choice: :mod:`~modelyard.gateway.fan_out`).
Legacy text completions with the same models: each prompt continued as raw text (no chat
template), ``echo`` and ``n`` (not streamed) too; ``suffix``, ``logprobs`` and
``best_of`` are refused. Embeddings with sentence-transformers models (``float`` or ``base64``).

Non-streaming requests that arrive together are batched; streams of one model run one at
a time. A model that does not exist, is gated or has an unsupported architecture is a
404, 401/403 or 400 at once; a model that fails to load or to run is an upstream error, so
a route goes on to its next target.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from modelyard.errors import BadRequestError, ModelyardError
from modelyard.gateway.adapters import openai_shapes
from modelyard.gateway.adapters.base import Adapter, Target, refuse_unsupported, text_only
from modelyard.gateway.adapters.text_completions import (
    COMPLETIONS_ONLY_PARAMETERS,
    refuse_completions_only,
)
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.schemas import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    EmbeddingRequest,
)
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.local.errors import ModelNotFoundError
from modelyard.local.manager import LoadedModel, LoadFailedError, ModelManager
from modelyard.local.types import Completion, GenerationParams, Message
from modelyard.providers.kinds import Endpoint, ProviderKind, ProviderKindSpec

__all__ = ["LOCAL", "LocalAdapter"]

SUPPORTED_PARAMETERS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
)

T = TypeVar("T")

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _message(message: ChatMessage) -> Message:
    return _ROLES[message.role], text_only(message, "Local models")


def _prepare(request: ChatCompletionRequest) -> tuple[list[Message], GenerationParams]:
    if request.tools:
        raise BadRequestError(
            "Local models do not support tools (function calling); remove `tools` or choose "
            "a model of another provider.",
            param="tools",
            code="unsupported_parameter",
        )
    refuse_unsupported(request, "local", SUPPORTED_PARAMETERS)
    params = GenerationParams(
        max_tokens=request.output_limit(),
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        stop=tuple(request.stop_list()),
    )
    return [_message(message) for message in request.messages], params


def _text_params(request: CompletionRequest, *, stream: bool) -> GenerationParams:
    refuse_completions_only(request, "local", allowed=("echo",))
    if stream and request.choices_per_prompt() > 1:
        raise BadRequestError(
            "Local models stream one choice per prompt; set stream to false for n > 1 "
            "(each choice is then generated in the same batch) or n to 1.",
            param="n",
            code="unsupported_parameter",
        )
    refuse_unsupported(
        request,
        "local",
        (*SUPPORTED_PARAMETERS, "prompt", "echo", "n", *COMPLETIONS_ONLY_PARAMETERS),
    )
    if request.max_tokens == 0:
        raise BadRequestError(
            "Local models generate at least 1 token; set max_tokens to 1 or more.",
            param="max_tokens",
        )
    return GenerationParams(
        max_tokens=request.output_limit(),
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        stop=tuple(request.stop_list()),
    )


def _usage(completion: Completion) -> dict[str, int]:
    return openai_shapes.usage(completion.prompt_tokens, completion.completion_tokens)


class LocalAdapter(Adapter):
    """Chat and embeddings with models run in-process by a :class:`ModelManager`."""

    api = "local"
    supports_tools = False
    #: One text per call; ``n`` > 1 is made by the gateway's fan-out (batched together).
    supports_n = False
    supports_embeddings = True

    def __init__(self, http: UpstreamHttp, manager: ModelManager | None = None) -> None:
        super().__init__(http)
        #: The gateway replaces this with the one it configured from the settings.
        self.manager = manager or ModelManager()

    def check_model(self, model: str) -> None:
        """Nothing here: a local id is a Hub id, a trained model or a path, never a URL;
        :func:`modelyard.local.sources.locate` checks it (and says what is wrong)."""

    async def _model(self, target: Target) -> LoadedModel:
        if target.local is None:  # the gateway resolves every local target for its caller
            raise ModelNotFoundError(target.model)
        try:
            return await self.manager.get(target.local, token=target.api_key)
        except LoadFailedError as error:
            raise UpstreamError("server", str(error)) from None

    @staticmethod
    async def _run(target: Target, work: Awaitable[T]) -> T:
        """``work`` within the target's timeout; a failure is an upstream error."""
        try:
            async with asyncio.timeout(target.timeout):
                return await work
        except TimeoutError:
            raise UpstreamError("timeout", f"{target.model} did not answer in time") from None
        except ModelyardError:
            raise
        except Exception as error:
            raise UpstreamError("server", f"{target.model} failed: {error}") from None

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        messages, params = _prepare(request)
        model = await self._model(target)
        model.generator()  # a 400 for an embedding model, before anything runs
        completion = await self._run(target, model.complete(messages, params))
        return openai_shapes.completion(
            id=openai_shapes.completion_id(),
            model=target.model,
            message=openai_shapes.assistant_message(completion.text),
            finish_reason=completion.finish_reason,
            usage=_usage(completion),
        )

    async def stream_chat(
        self, request: ChatCompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        messages, params = _prepare(request)
        model = await self._model(target)
        model.generator()
        envelope = openai_shapes.ChunkEnvelope(id=openai_shapes.completion_id(), model=target.model)
        chunk = envelope.chunk
        pieces = model.stream(messages, params)
        # The first piece comes before the first chunk: errors so far are plain HTTP errors.
        first = await anext(pieces)
        yield chunk({"role": "assistant", "content": ""})
        try:
            item: str | Completion = first
            while True:
                if isinstance(item, Completion):
                    yield chunk({}, item.finish_reason)
                    yield envelope.usage_chunk(_usage(item))
                    return
                yield chunk({"content": item})
                item = await anext(pieces)
        except ModelyardError:
            raise
        except Exception as error:
            raise UpstreamError("server", f"{target.model} failed: {error}") from None
        finally:
            await pieces.aclose()

    async def complete_text(self, request: CompletionRequest, target: Target) -> dict[str, Any]:
        """Every prompt continued as raw text, ``n`` times; they share a batch."""
        params = _text_params(request, stream=False)
        model = await self._model(target)
        model.generator()
        n = request.choices_per_prompt()
        prompts = [prompt for prompt in request.prompts() for _ in range(n)]
        completions = await self._run(
            target, asyncio.gather(*(model.complete(prompt, params) for prompt in prompts))
        )
        echo = bool(request.echo)
        choices = [
            openai_shapes.text_choice(
                index, (prompt if echo else "") + completion.text, completion.finish_reason
            )
            for index, (prompt, completion) in enumerate(zip(prompts, completions, strict=True))
        ]
        return openai_shapes.text_completion(
            id=openai_shapes.text_completion_id(),
            model=target.model,
            choices=choices,
            usage=openai_shapes.summed_usage([_usage(c) for c in completions]),
        )

    async def stream_text(
        self, request: CompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        """Every prompt continued as raw text and streamed, one after the other."""
        params = _text_params(request, stream=True)
        model = await self._model(target)
        model.generator()
        completion_id, created = openai_shapes.text_completion_id(), int(time.time())

        def event(choices: list[dict[str, Any]], **usage: Any) -> dict[str, Any]:
            return openai_shapes.text_completion(
                id=completion_id, model=target.model, choices=choices, created=created, **usage
            )

        usages = []
        for index, prompt in enumerate(request.prompts()):
            pieces = model.stream(prompt, params)
            try:
                item = await anext(pieces)
                if request.echo:
                    yield event([openai_shapes.text_choice(index, prompt, None)])
                while not isinstance(item, Completion):
                    yield event([openai_shapes.text_choice(index, item, None)])
                    item = await anext(pieces)
                yield event([openai_shapes.text_choice(index, "", item.finish_reason)])
                usages.append(_usage(item))
            except ModelyardError:
                raise
            except Exception as error:
                raise UpstreamError("server", f"{target.model} failed: {error}") from None
            finally:
                await pieces.aclose()
        yield event([], usage=openai_shapes.summed_usage(usages))

    async def embed(self, request: EmbeddingRequest, target: Target) -> dict[str, Any]:
        texts = [request.input] if isinstance(request.input, str) else request.input
        if not all(isinstance(text, str) for text in texts):
            raise BadRequestError(
                "Local embedding models take text input, not token arrays.", param="input"
            )
        model = await self._model(target)
        embedder = model.embedder()
        if request.dimensions is not None and request.dimensions != embedder.dimensions:
            raise BadRequestError(
                f"{target.model} returns {embedder.dimensions} dimensions; it cannot shorten "
                "them (remove `dimensions`).",
                param="dimensions",
                code="unsupported_parameter",
            )
        try:
            embeddings = await model.embed([str(text) for text in texts])
        except Exception as error:
            raise UpstreamError("server", f"{target.model} failed: {error}") from None
        encoded: list[Any] = [
            base64.b64encode(vector.astype("<f4").tobytes()).decode()
            if request.encoding_format == "base64"
            else vector.tolist()
            for vector in embeddings.vectors
        ]
        return openai_shapes.embedding_list(
            encoded, model=target.model, prompt_tokens=embeddings.tokens
        )


#: Models run in this process: nothing to connect to; a key, when set, is a Hub token.
LOCAL = ProviderKindSpec(
    ProviderKind.LOCAL,
    "Local models",
    None,
    (Endpoint("local"),),
    adapters=(LocalAdapter,),
    key_optional=True,
    user_keys=False,
)
