"""The OpenAI-compatible API: chat completions (streaming too), models and embeddings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from modelyard.api.chat_completion import complete_chat
from modelyard.api.deps import CurrentUser, SessionDep, SubscribedUser, app_state, metered_call
from modelyard.api.gateway_responses import gateway_headers, json_response
from modelyard.db.models import LlmModel
from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.providers.credentials import usable_kinds
from modelyard.training.models import list_visible
from modelyard.usage.completion import CallDetails

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


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
    call = await metered_call(request, user, CallDetails(endpoint="embeddings", model=body.model))
    answer = await call.embed(body)
    return json_response(answer, gateway_headers(request, call.served))


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
