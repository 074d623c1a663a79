"""Request bodies of the OpenAI-compatible API (the gateway's canonical format).

Known parameters are typed and range-checked; other parameters are kept (``extra``) and
passed to OpenAI-compatible upstreams, while translating adapters refuse what they cannot
honour with a clear 400.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

__all__ = [
    "DEFAULT_COMPLETION_MAX_TOKENS",
    "AnthropicNative",
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "EmbeddingRequest",
    "ResponsesNative",
    "StreamOptions",
]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class AnthropicNative(BaseModel):
    """The Anthropic-native parts of a ``POST /v1/messages`` request, carried beside its
    chat form: Anthropic targets get ``body`` as the client sent it, others the chat form
    (see :mod:`modelyard.gateway.anthropic_native`). Never serialised with the request."""

    #: The client's Messages request as sent, but for ``model`` and ``stream``.
    body: dict[str, Any]
    #: The ``anthropic-beta`` request header, forwarded to Anthropic only.
    beta: str | None = None
    #: Parameter (or block path) → why it cannot be sent to a target of another API.
    untranslatable: dict[str, str] = Field(default_factory=dict)
    #: OpenAI's ``reasoning_effort`` for the request's ``thinking``, for other targets.
    reasoning_effort: str | None = None


class ResponsesNative(BaseModel):
    """The body of a ``POST /v1/responses`` request, carried beside its chat form: targets
    that speak OpenAI's Responses API get it (see :mod:`modelyard.gateway.responses_native`),
    others the chat form. Never serialised with the request."""

    #: The Responses body to send, but for ``model`` and ``stream`` (``store`` false, the
    #: stored context already in ``input``, no ``previous_response_id``).
    body: dict[str, Any]


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    #: Set by the Messages API translation only (never from a request body).
    _anthropic: AnthropicNative | None = PrivateAttr(default=None)
    #: Set by the Responses API route only (never from a request body).
    _responses: ResponsesNative | None = PrivateAttr(default=None)

    model: str = Field(min_length=1, max_length=300)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    user: str | None = None

    def extra_params(self) -> dict[str, Any]:
        """Parameters beyond the typed ones (``logit_bias``, ``response_format``, …)."""
        return dict(self.__pydantic_extra__ or {})

    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def anthropic_native(self) -> AnthropicNative | None:
        """The Anthropic-native parts, for a request that came in as a Messages request."""
        return self._anthropic

    def with_anthropic_native(self, native: AnthropicNative | None) -> ChatCompletionRequest:
        """A copy carrying ``native`` (``None``: a plain chat request)."""
        copy = self.model_copy()
        copy._anthropic = native
        return copy

    @property
    def responses_native(self) -> ResponsesNative | None:
        """The Responses body, for a request that came in on ``POST /v1/responses``."""
        return self._responses

    def with_responses_native(self, native: ResponsesNative | None) -> ChatCompletionRequest:
        """A copy carrying ``native`` (``None``: a plain chat request)."""
        copy = self.model_copy()
        copy._responses = native
        return copy


#: OpenAI's ``max_tokens`` for a legacy completion that sets none.
DEFAULT_COMPLETION_MAX_TOKENS = 16


class CompletionRequest(BaseModel):
    """A legacy text completion (``POST /v1/completions``): one or more prompts continued.

    Prompts are text: token-id arrays are refused (400, ``param="prompt"``).
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300)
    prompt: str | list[str]
    suffix: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=0, le=10_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    best_of: int | None = Field(default=None, ge=0, le=20)
    stop: str | list[str] | None = None
    echo: bool | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    seed: int | None = None
    user: str | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _text_prompts(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("the prompt list is empty; send at least one prompt")
            if not all(isinstance(item, str) for item in value):
                raise ValueError(
                    "prompts of token ids are not supported; send the prompt as text "
                    "(a string or a list of strings)"
                )
        return value

    def extra_params(self) -> dict[str, Any]:
        """Parameters beyond the typed ones (``logit_bias``, ``presence_penalty``, …)."""
        return dict(self.__pydantic_extra__ or {})

    def prompts(self) -> list[str]:
        """The prompts in order (one choice per prompt and ``n``)."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def choices_per_prompt(self) -> int:
        return self.n or 1

    def output_limit(self) -> int:
        """``max_tokens``, or OpenAI's default for completions."""
        return DEFAULT_COMPLETION_MAX_TOKENS if self.max_tokens is None else self.max_tokens

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
