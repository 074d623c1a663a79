"""OpenAI's Responses API (``/v1/responses``), in front of every provider.

A request is translated to the gateway's chat form and metered like a chat completion
(endpoint ``responses``); the answer is translated back (JSON or the Responses event
stream). With ``store`` (the default, as at OpenAI) the Response and its chat-form context
are kept for the caller (:class:`~modelyard.responses.store.ResponseStore`, saves
group-committed): ``previous_response_id`` continues it, ``GET`` and
``DELETE /v1/responses/{id}`` read and remove it, and
``GET /v1/responses/{id}/input_items`` lists what it answered (its context, as items).
Another user's response id is a 404 like a missing one.

Where the target routing chose speaks the Responses API (provider type ``openai``), the
client's body goes there as it is and the upstream's answer or events come back as they
came (:mod:`~modelyard.gateway.inbound.openai_responses_native`); the request is still
checked by the translation first, so that any target of the route can serve it. Storage,
metering and failover are the same on both paths.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from modelyard.api.deps import CurrentUser, SubscribedUser, app_state, metered_call
from modelyard.api.gateway_responses import gateway_headers, json_response, requested_cache_ttl
from modelyard.api.metered_stream import MeteredStream
from modelyard.db.models import User
from modelyard.gateway.inbound.openai_responses import ResponsesRequest, to_chat_request
from modelyard.gateway.inbound.openai_responses_items import input_items, item_page
from modelyard.gateway.inbound.openai_responses_native import (
    relayed_response,
    relayed_sse,
    rewriter,
    with_native_body,
)
from modelyard.gateway.inbound.openai_responses_output import (
    assistant_message,
    new_response_id,
    to_response,
)
from modelyard.gateway.inbound.openai_responses_stream import ResponsesEventWriter
from modelyard.gateway.schemas import ChatMessage
from modelyard.usage.completion import CallDetails

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


async def _previous_context(request: Request, user: User, response_id: str) -> list[ChatMessage]:
    row = await app_state(request).responses.load(
        user_id=user.id, response_id=response_id, param="previous_response_id"
    )
    return [ChatMessage.model_validate(message) for message in row.context]


async def _keep(
    request: Request, user: User, response: dict[str, Any], conversation: list[ChatMessage]
) -> None:
    """Store ``response`` with the conversation that led to it, its answer appended."""
    context = [*conversation, assistant_message(response["output"])]
    await app_state(request).responses.save(
        user_id=user.id,
        response=response,
        context=[message.model_dump(exclude_none=True) for message in context],
    )


@router.post("/responses", response_model=None)
async def create_response(
    body: ResponsesRequest, request: Request, user: SubscribedUser
) -> Response:
    """Create a model response, as JSON or as a stream of Responses events."""
    context: list[ChatMessage] = []
    if body.previous_response_id:
        context = await _previous_context(request, user, body.previous_response_id)
    chat = with_native_body(to_chat_request(body, context), body, context)
    conversation = chat.messages[1:] if body.instructions else chat.messages
    call = await metered_call(
        request,
        user,
        CallDetails(endpoint="responses", model=chat.model, messages=chat.messages),
    )
    response_id, created_at = new_response_id(), int(time.time())
    if not chat.stream:
        answer = await call.complete(chat, cache_ttl=requested_cache_ttl(request))
        headers = gateway_headers(request, call.served)
        model = headers["x-modelyard-model"]
        response = relayed_response(
            answer, rewriter(body, response_id=response_id, model=model)
        ) or to_response(answer, body, response_id=response_id, created_at=created_at, model=model)
        if body.store:
            await _keep(request, user, response, conversation)
        return json_response(response, headers)
    chunks = await call.stream(chat)
    headers = gateway_headers(request, call.served)
    model = headers["x-modelyard-model"]
    writer = ResponsesEventWriter(body, response_id=response_id, created_at=created_at, model=model)
    rewrite = rewriter(body, response_id=response_id, model=model)

    async def keep(response: dict[str, Any]) -> None:
        await _keep(request, user, response, conversation)

    return MeteredStream(
        relayed_sse(writer, chunks, rewrite, on_finished=keep if body.store else None),
        chunks=chunks,
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )


@router.get("/responses/{response_id}", response_model=None)
async def get_response(response_id: str, request: Request, user: CurrentUser) -> Response:
    """A stored response of the caller's."""
    row = await app_state(request).responses.load(user_id=user.id, response_id=response_id)
    return json_response(row.response, {})


@router.delete("/responses/{response_id}", response_model=None)
async def delete_response(response_id: str, request: Request, user: CurrentUser) -> Response:
    """Delete a stored response of the caller's (OpenAI's deleted shape)."""
    await app_state(request).responses.delete(user_id=user.id, response_id=response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True}, {})


@router.get("/responses/{response_id}/input_items", response_model=None)
async def list_input_items(
    response_id: str,
    request: Request,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> Response:
    """The items a stored response of the caller's was given (previous turns included)."""
    row = await app_state(request).responses.load(user_id=user.id, response_id=response_id)
    context = [ChatMessage.model_validate(message) for message in row.context[:-1]]
    page = item_page(input_items(context, response_id), limit=limit, order=order, after=after)
    return json_response(page, {})
