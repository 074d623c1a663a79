"""OpenAI's legacy text completions (``POST /v1/completions``), in front of every provider.

OpenAI-compatible upstreams get the request as it is; chat-only providers answer each
prompt as one user message (see :mod:`modelyard.gateway.adapters.text_completions`); local
causal models continue the prompt as raw text. Recorded with endpoint ``completions``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.chat_completion import openai_sse
from modelyard.api.deps import SubscribedUser, metered_call
from modelyard.api.gateway_responses import gateway_headers, json_response, requested_cache_ttl
from modelyard.api.metered_stream import MeteredStream
from modelyard.gateway.schemas import CompletionRequest
from modelyard.usage.completion import CallDetails

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


@router.post("/completions", response_model=None)
async def completions(body: CompletionRequest, request: Request, user: SubscribedUser) -> Response:
    """OpenAI's legacy completions: a prompt (or a list of prompts) continued."""
    details = CallDetails(endpoint="completions", model=body.model, prompts=tuple(body.prompts()))
    call = await metered_call(request, user, details)
    if not body.stream:
        answer = await call.complete_text(body, cache_ttl=requested_cache_ttl(request))
        return json_response(answer, gateway_headers(request, call.served))
    chunks = await call.stream_text(body)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return MeteredStream(
        openai_sse(chunks, include_usage=include_usage),
        chunks=chunks,
        media_type="text/event-stream",
        headers={**gateway_headers(request, call.served), "cache-control": "no-cache"},
    )
