"""``POST /v2/training/advice``: hyperparameter, dataset and strategy advice for a job.

Who writes it, in this order: Groq with the key given in the request (used for this call
only, never stored) or the user's saved Groq key; else a gateway model the user names
(``model``, metered like any chat); else the rule-based recommender. A late, refused or
invalid answer falls back to the rules and says why.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from modelyard.api.deps import CurrentUser, SessionDep, SettingsDep, app_state, metered_call
from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatCompletionRequest
from modelyard.training import jobs
from modelyard.training.advice import (
    AdviceRequestFacts,
    AdviceResult,
    advice_messages,
    rule_based_advice,
)
from modelyard.training.advisor import ask_groq, ask_model, facts_for
from modelyard.training.config import TaskName
from modelyard.training.keys import saved_key, valid_key
from modelyard.usage.completion import CallDetails, answer_text

__all__ = ["AdviceRequest", "router"]

router = APIRouter(prefix="/v2/training", tags=["training"])


class AdviceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: TaskName
    #: What the model should do, in the user's words.
    description: str = Field(default="", max_length=4000)
    dataset_id: int | None = Field(default=None, ge=1)
    base_model: str | None = Field(default=None, max_length=300)
    compute_type: Literal["cpu", "gpu"] = "cpu"
    #: A Groq key for this request only (never stored, never returned).
    groq_api_key: SecretStr | None = None
    #: Use the Groq key saved in the user's profile.
    use_saved_key: bool = False
    #: Any gateway model or route the user may use (when no Groq key is given).
    model: str | None = Field(default=None, min_length=1, max_length=300)


@router.post("/advice")
async def advise(
    body: AdviceRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> AdviceResult:
    """Advice in one schema, from a model when one is available, else from the rules."""
    dataset = None
    if body.dataset_id is not None:
        dataset = await jobs.get_dataset(session, body.dataset_id, user)
    facts = facts_for(
        AdviceRequestFacts(
            task=body.task,
            description=body.description,
            base_model=body.base_model,
            compute_type=body.compute_type,
        ),
        dataset,
    )
    key = valid_key("groq", body.groq_api_key, param="groq_api_key")
    if key is None and body.use_saved_key:
        key = await saved_key(session, user, "groq")
        if key is None:
            raise BadRequestError(
                "You have no Groq key saved; add one in your profile or send groq_api_key.",
                param="use_saved_key",
                code="no_saved_key",
            )
    timeout = settings.advice_timeout_seconds
    if key is not None:
        answer = ask_groq(app_state(request).upstream_http, settings, key, facts)
        model = settings.advice_model
    elif body.model is not None:
        answer = _through_gateway(request, user, body.model, advice_messages(facts))
        model = body.model
    else:
        return AdviceResult(source="rules", advice=rule_based_advice(facts))
    return await ask_model(answer, facts, model=model, timeout=timeout)


async def _through_gateway(
    request: Request, user: CurrentUser, model: str, messages: list[dict[str, str]]
) -> str:
    """Ask ``model`` through the gateway, metered and recorded like any chat request."""
    chat = ChatCompletionRequest.model_validate(
        {"model": model, "messages": messages, "response_format": {"type": "json_object"}}
    )
    call = await metered_call(
        request,
        user,
        CallDetails(endpoint="training.advice", model=model, messages=messages),
    )
    return answer_text(await call.complete(chat, cache_ttl=0))
