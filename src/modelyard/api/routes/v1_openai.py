"""The OpenAI-compatible API: chat completions (streaming too), models and embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.chat_completion import complete_chat
from modelyard.api.deps import CurrentUser, SessionDep, SubscribedUser, metered_call
from modelyard.api.gateway_responses import gateway_headers, json_response
from modelyard.api.model_lists import find_model, model_list
from modelyard.api.schemas.models import ModelListObject, ModelObject
from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
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


@router.get("/models", response_model=ModelListObject)
async def models(request: Request, session: SessionDep, user: CurrentUser) -> ModelListObject:
    """Every name the caller may send as ``model``, in OpenAI's list format with
    modelyard's fields (``name``, ``kind``, ``context_length``, ``pricing``, ``source``):
    routes, catalog and admin-provider models it has a credential for, its own and shared
    trained models, and the local built-in models."""
    listed = await model_list(request, session, user)
    return ModelListObject(data=[ModelObject.of(model) for model in listed.usable])


@router.get("/models/{model_id:path}", response_model=ModelObject)
async def model(
    model_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> ModelObject:
    """One entry of ``GET /v1/models``, also under another name that means the same model
    (``openai/gpt-4o`` for ``gpt-4o``); a 404 ``model_not_found`` otherwise."""
    return ModelObject.of(await find_model(request, session, user, model_id))
