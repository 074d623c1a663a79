"""OpenAI's wire format: OpenAI itself and every OpenAI-compatible service (Groq, the
Hugging Face router, vLLM, Ollama, Together, custom base URLs).

A request from the Responses API (with
:attr:`~modelyard.gateway.schemas.ChatCompletionRequest.responses_native`) reaches an
``openai`` target as the client's Responses body, at ``{base_url}/responses``, and its
answer travels beside the chat-shaped one (:mod:`modelyard.gateway.responses_native`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from modelyard.gateway.adapters.base import Adapter, Target
from modelyard.gateway.adapters.wire import post_json, post_sse, stream_error
from modelyard.gateway.responses_native import (
    FINAL_EVENTS,
    NATIVE_RESPONSE,
    event_chunk,
    native_body,
    speaks_responses,
    to_completion,
)
from modelyard.gateway.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.kinds import ConnectionCheck, Endpoint, ProviderKind, ProviderKindSpec

__all__ = [
    "CHAT_ONLY_KINDS",
    "CUSTOM",
    "GROQ",
    "OPENAI",
    "OPENAI_COMPATIBLE",
    "OpenAIAdapter",
    "bearer_auth",
]

#: Fields of our request that are never forwarded upstream.
_LOCAL_FIELDS = frozenset({"conversation_id"})
#: Kinds whose OpenAI-format API has no legacy ``/completions`` (Groq, the Hugging Face
#: router, the custom REST contract): their text completions are answered through chat.
CHAT_ONLY_KINDS = frozenset({ProviderKind.GROQ, ProviderKind.HUGGINGFACE, ProviderKind.CUSTOM})


def bearer_auth(api_key: str | None, organization: str | None) -> dict[str, str]:
    """OpenAI's headers: the key as a bearer token, and the organization when set."""
    headers = {}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    if organization:
        headers["openai-organization"] = organization
    return headers


def _headers(target: Target) -> dict[str, str]:
    return bearer_auth(target.api_key, target.credential.organization)


class OpenAIAdapter(Adapter):
    api = "openai"
    supports_tools = True
    supports_embeddings = True

    def _body(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        body = request.model_dump(exclude_none=True, exclude=set(_LOCAL_FIELDS))
        body["model"] = target.model
        return body

    async def _post(
        self, path: str, body: dict[str, Any], target: Target, *, expect: str = "choices"
    ) -> dict[str, Any]:
        """One JSON call to ``{base_url}{path}``; an answer without ``expect`` is a protocol
        error."""
        answer = await post_json(
            self.http,
            f"{target.base_url}{path}",
            headers=_headers(target),
            body=body,
            timeout=target.timeout,
        )
        if not isinstance(answer, dict) or expect not in answer:
            raise UpstreamError("protocol", f"the provider's answer has no {expect}")
        return answer

    def _events(
        self, path: str, body: dict[str, Any], target: Target, *, raise_errors: bool = False
    ) -> AsyncIterator[Any]:
        """The server-sent events of ``POST {base_url}{path}``."""
        url = f"{target.base_url}{path}"
        return post_sse(
            self.http,
            url,
            headers=_headers(target),
            body=body,
            timeout=target.timeout,
            raise_errors=raise_errors,
        )

    def _relay(
        self, path: str, body: dict[str, Any], target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of a stream from ``{base_url}{path}``, always asking for usage; an
        error event raises."""
        body = {**body, "stream": True}
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
        return self._events(path, body, target, raise_errors=True)

    @staticmethod
    def _unstreamed(body: dict[str, Any]) -> dict[str, Any]:
        body["stream"] = False
        body.pop("stream_options", None)
        return body

    @staticmethod
    def _native(request: ChatCompletionRequest, target: Target) -> bool:
        return request.responses_native is not None and speaks_responses(target)

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        if self._native(request, target):
            body = native_body(request, target, stream=False)
            answer = await self._post("/responses", body, target, expect="output")
            return {**to_completion(answer), NATIVE_RESPONSE: answer}
        body = self._unstreamed(self._body(request, target))
        return await self._post("/chat/completions", body, target)

    def stream_chat(
        self, request: ChatCompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        if self._native(request, target):
            return self._relay_responses(native_body(request, target, stream=True), target)
        return self._relay("/chat/completions", self._body(request, target), target)

    async def _relay_responses(
        self, body: dict[str, Any], target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of a Responses stream, each riding on a chat chunk. An ``error``
        event before anything was relayed only fails (so that the next target is tried);
        a later one, or ``response.failed``, is relayed and then fails the stream."""
        started = finished = False
        async for event in self._events("/responses", body, target):
            if not isinstance(event, dict):
                raise UpstreamError("protocol", "the provider sent an event that is no object")
            kind = event.get("type")
            if kind == "error" and not started:
                raise _event_error(event)
            yield event_chunk(event, target.model)
            started = True
            if kind == "error":
                raise _event_error(event)
            if kind == "response.failed":
                error = (event.get("response") or {}).get("error") or {}
                raise _event_error(error)
            finished = finished or kind in FINAL_EVENTS
        if not finished:
            raise UpstreamError("protocol", "the stream ended before response.completed")

    def _completion_body(self, request: CompletionRequest, target: Target) -> dict[str, Any]:
        body = request.model_dump(exclude_none=True)
        body["model"] = target.model
        return body

    async def complete_text(self, request: CompletionRequest, target: Target) -> dict[str, Any]:
        """Passed through to ``{base_url}/completions``, the answer relayed as it is (through
        chat for :data:`CHAT_ONLY_KINDS`)."""
        if target.credential.kind in CHAT_ONLY_KINDS:
            return await super().complete_text(request, target)
        body = self._unstreamed(self._completion_body(request, target))
        return await self._post("/completions", body, target)

    def stream_text(
        self, request: CompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        """Streamed from ``{base_url}/completions`` (through chat for :data:`CHAT_ONLY_KINDS`)."""
        if target.credential.kind in CHAT_ONLY_KINDS:
            return super().stream_text(request, target)
        return self._relay("/completions", self._completion_body(request, target), target)

    async def embed(self, request: EmbeddingRequest, target: Target) -> dict[str, Any]:
        body = request.model_dump(exclude_none=True)
        body["model"] = target.model
        return await self._post("/embeddings", body, target, expect="data")


def _event_error(error: dict[str, Any]) -> UpstreamError:
    """The error of a Responses ``error`` event (or a failed Response's ``error``)."""
    message = str(error.get("message") or error.get("code") or "unknown error")
    code = error.get("code")
    return stream_error({"error": {"message": message, "type": code, "code": None}})


_OPENAI_API = (Endpoint("openai"),)
_MODEL_LIST = ConnectionCheck("/models")

OPENAI = ProviderKindSpec(
    ProviderKind.OPENAI,
    "OpenAI",
    "https://api.openai.com/v1",
    _OPENAI_API,
    adapters=(OpenAIAdapter,),
    auth=bearer_auth,
    check=_MODEL_LIST,
    fine_tuning="openai",
    env_vars=("OPENAI_API_KEY",),
    key_prefix="sk-",
    key_min_length=20,
    key_url="https://platform.openai.com/api-keys",
)
GROQ = ProviderKindSpec(
    ProviderKind.GROQ,
    "Groq",
    "https://api.groq.com/openai/v1",
    _OPENAI_API,
    adapters=(OpenAIAdapter,),
    auth=bearer_auth,
    check=_MODEL_LIST,
    env_vars=("GROQ_API_KEY",),
    key_prefix="gsk_",
    key_min_length=10,
    key_url="https://console.groq.com/keys",
)
OPENAI_COMPATIBLE = ProviderKindSpec(
    ProviderKind.OPENAI_COMPATIBLE,
    "OpenAI-compatible URL",
    None,
    _OPENAI_API,
    adapters=(OpenAIAdapter,),
    auth=bearer_auth,
    check=ConnectionCheck("/models", bare_list=True),
    fine_tuning="openai",
    key_optional=True,
    user_keys=False,
)
#: The custom REST contract (``docs/custom-provider.md``): OpenAI's chat API, its own
#: ``/test`` check and fine-tuning API.
CUSTOM = ProviderKindSpec(
    ProviderKind.CUSTOM,
    "Custom REST provider",
    None,
    _OPENAI_API,
    adapters=(OpenAIAdapter,),
    auth=bearer_auth,
    check=ConnectionCheck("/test", listing="message"),
    fine_tuning="custom",
    user_keys=False,
)
