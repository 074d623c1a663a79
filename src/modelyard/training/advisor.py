"""Getting advice: ask a model within the time allowed, fall back to the rules.

Used by ``POST /v2/training/advice`` and ``modelyard train --advice``; the schema, the
prompt and the rules are in :mod:`.advice`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from modelyard.config import Settings
from modelyard.db.models import TrainingDataset
from modelyard.gateway.adapters.base import Target
from modelyard.gateway.adapters.openai import OpenAIAdapter
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.schemas import ChatCompletionRequest
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.credentials import Credential
from modelyard.providers.kinds import ProviderKind
from modelyard.training.advice import (
    AdviceRequestFacts,
    AdviceResult,
    AdviceUnusable,
    advice_messages,
    clamp_advice,
    parse_advice,
    rule_based_advice,
)
from modelyard.training.config import TrainingConfig

__all__ = ["advise", "ask_groq", "ask_model", "facts_for"]


def facts_for(facts: AdviceRequestFacts, dataset: TrainingDataset | None) -> AdviceRequestFacts:
    """``facts`` with the dataset's statistics added."""
    if dataset is None:
        return facts
    return facts.model_copy(
        update={
            "num_examples": dataset.num_examples,
            "dataset_kind": dataset.kind,
            "num_labels": len(dataset.labels) if dataset.labels else None,
            "size_bytes": dataset.size_bytes,
        }
    )


def _reason(error: UpstreamError, timeout: float) -> str:
    if error.category == "timeout":
        return f"the advice model did not answer within {timeout:g} s"
    if error.category == "unauthorized":
        return "the Groq key was refused; check it at https://console.groq.com/keys"
    if error.category == "rate_limited":
        return "the advice model is rate-limited; try again in a minute"
    return f"the advice model failed ({error.category}: {error.message})"


async def ask_model(
    answer: Awaitable[str], facts: AdviceRequestFacts, *, model: str, timeout: float
) -> AdviceResult:
    """The model's advice from ``answer`` (its text), checked against the schema and kept
    within the rules' bounds, or the rules and the reason why not."""
    try:
        content = await asyncio.wait_for(answer, timeout)
        advice = clamp_advice(parse_advice(content), facts)
        return AdviceResult(source="llm", model=model, advice=advice)
    except UpstreamError as error:
        reason = _reason(error, timeout)
    except TimeoutError:
        reason = f"the advice model did not answer within {timeout:g} s"
    except AdviceUnusable as error:
        reason = str(error)
    return AdviceResult(source="rules", advice=rule_based_advice(facts), fallback_reason=reason)


async def ask_groq(
    http: UpstreamHttp, settings: Settings, key: str, facts: AdviceRequestFacts
) -> str:
    """The text of Groq's answer (``advice_base_url``, ``advice_model``), strict JSON asked:
    one chat completion sent as the gateway sends it to a Groq key."""
    base_url = settings.advice_base_url.rstrip("/")
    target = Target(
        "openai",
        base_url,
        settings.advice_model,
        Credential(ProviderKind.GROQ, "user", key, base_url, label="the Groq key"),
        settings.advice_timeout_seconds,
    )
    request = ChatCompletionRequest.model_validate(
        {
            "model": settings.advice_model,
            "messages": advice_messages(facts),
            "response_format": {"type": "json_object"},
            "temperature": 0.2,
        }
    )
    answer = await OpenAIAdapter(http).chat(request, target)
    choices = answer.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


async def advise(
    settings: Settings,
    config: TrainingConfig,
    dataset: TrainingDataset | None,
    groq_key: str | None,
    *,
    description: str = "",
    measured: AdviceRequestFacts | None = None,
) -> AdviceResult:
    """Advice for a job about to start: Groq with ``groq_key``, else the rules; on the
    ``measured`` facts (:func:`~modelyard.training.advice.measure`) when given."""
    facts = measured or facts_for(
        AdviceRequestFacts(
            task=config.task,
            description=description,
            base_model=config.resolved_base(),
            compute_type=config.compute_type,
        ),
        dataset,
    )
    if groq_key is None:
        return AdviceResult(source="rules", advice=rule_based_advice(facts))
    http = UpstreamHttp()
    try:
        return await ask_model(
            ask_groq(http, settings, groq_key, facts),
            facts,
            model=settings.advice_model,
            timeout=settings.advice_timeout_seconds,
        )
    finally:
        await http.aclose()
