"""The adapter interface every provider wire format implements.

An adapter turns a canonical (OpenAI-format) request into one upstream call for one
:class:`Target` and returns the answer in the OpenAI format: a completion dict, a stream
of chunk dicts (the last one may carry ``usage``), or an embeddings list. It raises
:class:`~modelyard.gateway.upstream_errors.UpstreamError` for anything that did not work,
and :class:`~modelyard.errors.BadRequestError` for a parameter it cannot honour — so a
router can try the next (endpoint, key) candidate or give up.

Before any call, the dispatcher asks every target's adapter :meth:`Adapter.check_model`
whether it can address the model id at all (see
:mod:`~modelyard.gateway.adapters.model_ids`); a refused id never reaches a provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from modelyard.errors import BadRequestError
from modelyard.gateway.adapters import text_completions
from modelyard.gateway.adapters.model_ids import check_model_id
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.schemas import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    EmbeddingRequest,
)
from modelyard.local.sources import LocalRef
from modelyard.providers.credentials import Credential

__all__ = ["TEXT_ROLES", "Adapter", "Target", "refuse_unsupported", "text_only"]


@dataclass(frozen=True)
class Target:
    """One upstream call's destination: wire format, endpoint, model and credential."""

    api: str
    base_url: str
    model: str
    credential: Credential = field(repr=False)
    timeout: float = 600.0
    #: A local model as resolved for the caller (``local`` targets only).
    local: LocalRef | None = field(default=None, repr=False)

    @property
    def api_key(self) -> str | None:
        return self.credential.api_key


class Adapter:
    """Base class: subclasses set the class attributes and implement the calls they support."""

    #: The wire format's name, e.g. ``"openai"``, ``"anthropic"``.
    api: ClassVar[str]
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False
    #: Whether the API answers ``n`` > 1 choices in one call; when not, the gateway calls
    #: the adapter ``n`` times (without ``n``) and merges the choices
    #: (:mod:`~modelyard.gateway.fan_out`).
    supports_n: ClassVar[bool] = True
    #: Whether :meth:`count_tokens` asks the provider (``POST /v1/messages/count_tokens``).
    counts_tokens: ClassVar[bool] = False

    def __init__(self, http: UpstreamHttp) -> None:
        self.http = http

    def check_model(self, model: str) -> None:
        """Raise a 400 (``code="invalid_model"``) when ``model`` cannot be sent to this API.

        The default suits a model id that goes into the JSON body; an adapter that puts it
        into a URL checks it with :func:`~modelyard.gateway.adapters.model_ids.model_path`.
        """
        check_model_id(model)

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        raise BadRequestError(f"The {self.api} API does not offer chat completions.")

    def stream_chat(
        self, request: ChatCompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        raise BadRequestError(f"The {self.api} API does not offer streaming.", param="stream")

    async def embed(self, request: EmbeddingRequest, target: Target) -> dict[str, Any]:
        raise BadRequestError(
            f"Model {target.model} ({self.api} API) does not offer embeddings.", param="model"
        )

    async def count_tokens(self, request: ChatCompletionRequest, target: Target) -> int | None:
        """The request's input tokens as the provider counts them (see
        :attr:`counts_tokens`); ``None``: the provider cannot say, the gateway estimates."""
        return None

    async def complete_text(self, request: CompletionRequest, target: Target) -> dict[str, Any]:
        """A legacy text completion; by default each prompt answered through :meth:`chat`
        (see :mod:`~modelyard.gateway.adapters.text_completions`)."""
        return await text_completions.complete_through_chat(self, request, target)

    def stream_text(
        self, request: CompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        """A streamed text completion; by default through :meth:`stream_chat`."""
        return text_completions.stream_through_chat(self, request, target)


def refuse_unsupported(
    request: ChatCompletionRequest | CompletionRequest, api: str, supported: Iterable[str]
) -> None:
    """Raise a 400 naming the first parameter the target cannot honour."""
    # conversation_id belongs to the app's own chat route and never goes upstream.
    allowed = set(supported) | {
        "model",
        "messages",
        "stream",
        "stream_options",
        "user",
        "conversation_id",
    }
    given = request.model_fields_set | set(request.extra_params())
    for name in sorted(given - allowed):
        value = getattr(request, name, None) if name in request.model_fields_set else True
        if value is not None and not (name == "n" and value == 1):
            raise BadRequestError(
                f"Parameter {name!r} is not supported by the {api} API; remove it or "
                "choose a model of another provider.",
                param=name,
                code="unsupported_parameter",
            )


#: Roles a text-only target understands (tool messages and tool calls are refused).
TEXT_ROLES = frozenset({"system", "developer", "user", "assistant"})


def text_only(message: ChatMessage, target: str) -> str:
    """The text of ``message`` for a text-only ``target`` (e.g. "Local models"), or a 400
    when it carries tools, tool results or non-text content."""
    if message.role not in TEXT_ROLES or message.tool_calls:
        raise BadRequestError(
            f"{target} do not support tools or tool messages; choose a model of another provider.",
            param="messages",
            code="unsupported_parameter",
        )
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise BadRequestError(
                f"{target} accept text content only.",
                param="messages",
                code="unsupported_content",
            )
        texts.append(str(part.get("text") or ""))
    return "".join(texts)
