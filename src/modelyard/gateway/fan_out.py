"""``n`` choices from an API that answers one per call.

An adapter whose API has no ``n`` says so (``supports_n = False``); for ``n`` > 1 the
gateway calls it ``n`` times at once, with ``n`` left out, and merges the answers: the
choices in call order (``index`` 0..n-1), the first answer's id and model, the usage
summed (each call was billed for its prompt, so prompt tokens are counted ``n`` times).
One failed call fails the request (the others are cancelled), so a route goes on to its
next target as for any failure. With the same ``seed`` the calls may answer alike.

Streaming ``n`` > 1 from such an API is refused (400, ``param="n"``): ``n`` streams
interleaved would make a client wait on the slowest; ask without ``stream`` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from modelyard.errors import BadRequestError
from modelyard.gateway.adapters import openai_shapes
from modelyard.gateway.adapters.base import Adapter, Target
from modelyard.gateway.schemas import ChatCompletionRequest

__all__ = ["chat", "merged", "stream"]


def _fanned_out(adapter: Adapter, request: ChatCompletionRequest) -> bool:
    return (request.n or 1) > 1 and not adapter.supports_n


def merged(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``chat.completion`` of the first choice of each answer."""
    choices = [{**answer["choices"][0], "index": index} for index, answer in enumerate(answers)]
    usages = [answer["usage"] for answer in answers if answer.get("usage")]
    return {**answers[0], "choices": choices, "usage": openai_shapes.summed_usage(usages)}


async def chat(adapter: Adapter, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
    """The adapter's answer, with ``n`` choices however its API counts them."""
    if not _fanned_out(adapter, request):
        return await adapter.chat(request, target)
    single = request.model_copy(update={"n": None})
    calls = [asyncio.ensure_future(adapter.chat(single, target)) for _ in range(request.n or 1)]
    try:
        answers = await asyncio.gather(*calls)
    except BaseException:
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        raise
    return merged(list(answers))


async def _refusal(error: BadRequestError) -> AsyncIterator[dict[str, Any]]:
    raise error
    yield {}  # pragma: no cover - makes this an async generator


def stream(
    adapter: Adapter, request: ChatCompletionRequest, target: Target
) -> AsyncIterator[dict[str, Any]]:
    """The adapter's stream; a 400 (at the first chunk, as adapters refuse parameters)
    for ``n`` > 1 that its API cannot stream."""
    if not _fanned_out(adapter, request):
        return adapter.stream_chat(request, target)
    return _refusal(
        BadRequestError(
            f"The {adapter.api} API answers one choice per call, and the gateway does not "
            "stream n > 1 choices from it; set stream to false (n choices are then made by "
            "n calls) or n to 1.",
            param="n",
            code="unsupported_parameter",
        )
    )
