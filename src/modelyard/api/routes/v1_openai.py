"""The OpenAI-compatible API: chat completions (streaming too), models and embeddings."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from modelyard.api.deps import CurrentUser, SessionDep, SubscribedUser, app_state
from modelyard.api.metering import MeteredStream, Metering, OnComplete, answer_text
from modelyard.db.models import LlmModel, User
from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.service import Served
from modelyard.gateway.sse import DONE, encode_event
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.credentials import usable_kinds
from modelyard.training.models import list_visible

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


def json_response(body: Any, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


#: ``x-modelyard-cache: true`` caches a request for this long (seconds).
DEFAULT_REQUEST_CACHE_TTL = 600


def requested_cache_ttl(request: Request) -> int | None:
    """The cache TTL the ``x-modelyard-cache`` header asks for (``None``: the route's).

    ``true`` → the default TTL, a number → that many seconds, ``false``/``0`` → no cache.
    """
    value = request.headers.get("x-modelyard-cache")
    if value is None:
        return None
    value = value.strip().lower()
    if value in ("true", "yes", "on"):
        return DEFAULT_REQUEST_CACHE_TTL
    if value in ("false", "no", "off"):
        return 0
    if value.isdigit():
        return int(value)
    raise BadRequestError(
        "x-modelyard-cache must be true, false or a number of seconds.", param="x-modelyard-cache"
    )


def gateway_headers(request: Request, served: Served | None) -> dict[str, str]:
    """The served-by headers plus ``x-modelyard-overhead-ms``: time in the gateway itself."""
    assert served is not None, "headers are asked for after the gateway answered"
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    overhead = (time.perf_counter() - started - served.upstream_seconds) * 1000
    return {**served.headers(), "x-modelyard-overhead-ms": f"{max(0.0, overhead):.2f}"}


async def openai_sse(
    chunks: AsyncIterator[dict[str, Any]], *, include_usage: bool
) -> AsyncIterator[bytes]:
    """The client's SSE stream; an upstream failure mid-stream ends it with an error event."""
    try:
        async for chunk in chunks:
            if include_usage or chunk.get("choices"):
                yield encode_event(chunk)
        yield DONE
    except UpstreamError as error:
        yield encode_event(
            {
                "error": {
                    "message": f"The upstream stream failed: {error.message}",
                    "type": "upstream_error",
                    "param": None,
                    "code": f"upstream_{error.category}",
                }
            }
        )
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()


async def complete_chat(
    request: Request,
    user: User,
    body: ChatCompletionRequest,
    *,
    conversation_id: int | None = None,
    on_complete: OnComplete | None = None,
) -> Response:
    """Answer a chat completion, as JSON or as a stream (shared by /v1 and /v2)."""
    meter = Metering(
        request,
        user,
        endpoint="chat",
        model=body.model,
        messages=body.messages,
        conversation_id=conversation_id,
        on_complete=on_complete,
    )
    if not body.stream:
        answer = await meter.complete(body, cache_ttl=requested_cache_ttl(request))
        await meter.succeed(usage=answer.get("usage"), content=answer_text(answer))
        return json_response(answer, gateway_headers(request, meter.served))
    first, rest = await meter.open_stream(body)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return MeteredStream(
        openai_sse(meter.stream(first, rest), include_usage=include_usage),
        meter=meter,
        media_type="text/event-stream",
        headers={**gateway_headers(request, meter.served), "cache-control": "no-cache"},
    )


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, user: SubscribedUser
) -> Response:
    """OpenAI's chat completions, in front of every provider."""
    return await complete_chat(request, user, body)


@router.post("/embeddings", response_model=None)
async def embeddings(body: EmbeddingRequest, request: Request, user: CurrentUser) -> Response:
    """OpenAI's embeddings."""
    if isinstance(body.input, list) and not body.input:
        raise BadRequestError("input must not be empty.", param="input")
    meter = Metering(request, user, endpoint="embeddings", model=body.model)
    answer = await meter.embed(body)
    return json_response(answer, gateway_headers(request, meter.served))


@router.get("/models")
async def models(request: Request, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """The models the caller can use, in OpenAI's list format (trained models: the
    caller's own and those shared with everyone, as ``local/<name>``)."""
    usable = await usable_kinds(session, user=user, system_keys=app_state(request).system_keys)
    rows = await session.execute(
        select(LlmModel).where(LlmModel.is_active.is_(True)).order_by(LlmModel.id)
    )
    data = [
        {
            "id": model.model_id,
            "object": "model",
            "created": int(model.created_at.timestamp()),
            "owned_by": model.provider_kind,
        }
        for model in rows.scalars()
        if model.provider_kind in usable
    ]
    data += [
        {
            "id": f"local/{model.name}",
            "object": "model",
            "created": int(model.created_at.timestamp()),
            "owned_by": "local",
        }
        for model in await list_visible(session, user)
    ]
    return {"object": "list", "data": data}
