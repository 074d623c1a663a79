"""The OpenAI-compatible API: chat completions (streaming too), models and embeddings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from modelyard.api.deps import CurrentUser, SessionDep, SubscribedUser, app_state
from modelyard.db.models import LlmModel, User
from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.sse import DONE, encode_event
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.credentials import usable_kinds

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


def json_response(body: Any, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


async def openai_sse(
    first: dict[str, Any] | None,
    rest: AsyncIterator[dict[str, Any]],
    *,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The client's SSE stream; an upstream failure mid-stream ends it with an error event."""

    def wanted(chunk: dict[str, Any]) -> bool:
        return include_usage or bool(chunk.get("choices"))

    try:
        if first is not None and wanted(first):
            yield encode_event(first)
        async for chunk in rest:
            if wanted(chunk):
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
        closer = getattr(rest, "aclose", None)
        if closer is not None:
            await closer()


async def complete_chat(request: Request, user: User, body: ChatCompletionRequest) -> Response:
    """Answer a chat completion, as JSON or as a stream (shared by /v1 and /v2)."""
    gateway = app_state(request).gateway
    if not body.stream:
        answer, served = await gateway.chat(user, body)
        return json_response(answer, served.headers())
    first, rest, served = await gateway.stream(user, body)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        openai_sse(first, rest, include_usage=include_usage),
        media_type="text/event-stream",
        headers={**served.headers(), "cache-control": "no-cache"},
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
    answer, served = await app_state(request).gateway.embed(user, body)
    return json_response(answer, served.headers())


@router.get("/models")
async def models(request: Request, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """The models the caller can use, in OpenAI's list format."""
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
    return {"object": "list", "data": data}
