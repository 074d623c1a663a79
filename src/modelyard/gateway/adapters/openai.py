"""OpenAI's wire format: OpenAI itself and every OpenAI-compatible service (Groq, the
Hugging Face router, vLLM, Ollama, Together, custom base URLs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from modelyard.gateway.adapters.base import Adapter, Target
from modelyard.gateway.adapters.wire import post_json, post_sse, stream_error
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.upstream_errors import UpstreamError

__all__ = ["OpenAIAdapter"]

#: Fields of our request that are never forwarded upstream.
_LOCAL_FIELDS = frozenset({"conversation_id"})


def _headers(target: Target) -> dict[str, str]:
    headers = {}
    if target.api_key:
        headers["authorization"] = f"Bearer {target.api_key}"
    if target.credential.organization:
        headers["openai-organization"] = target.credential.organization
    return headers


class OpenAIAdapter(Adapter):
    api = "openai"
    supports_tools = True
    supports_embeddings = True

    def _body(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        body = request.model_dump(exclude_none=True, exclude=set(_LOCAL_FIELDS))
        body["model"] = target.model
        return body

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        body = self._body(request, target)
        body["stream"] = False
        body.pop("stream_options", None)
        answer = await post_json(
            self.http,
            f"{target.base_url}/chat/completions",
            headers=_headers(target),
            body=body,
            timeout=target.timeout,
        )
        if not isinstance(answer, dict) or "choices" not in answer:
            raise UpstreamError("protocol", "the provider's answer has no choices")
        return answer

    async def stream_chat(
        self, request: ChatCompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        body = self._body(request, target)
        body["stream"] = True
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
        async for chunk in post_sse(
            self.http,
            f"{target.base_url}/chat/completions",
            headers=_headers(target),
            body=body,
            timeout=target.timeout,
        ):
            if isinstance(chunk, dict) and "error" in chunk:
                raise stream_error(chunk)
            yield chunk

    async def embed(self, request: EmbeddingRequest, target: Target) -> dict[str, Any]:
        body = request.model_dump(exclude_none=True)
        body["model"] = target.model
        answer = await post_json(
            self.http,
            f"{target.base_url}/embeddings",
            headers=_headers(target),
            body=body,
            timeout=target.timeout,
        )
        if not isinstance(answer, dict) or "data" not in answer:
            raise UpstreamError("protocol", "the provider's answer has no data")
        return answer
