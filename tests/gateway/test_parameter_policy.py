"""The ``unsupported_params`` policy around one target's call: what is dropped, what is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelyard.errors import BadRequestError
from modelyard.gateway.adapters.base import refuse_unsupported
from modelyard.gateway.parameter_policy import ParameterPolicy
from modelyard.gateway.schemas import ChatCompletionRequest

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def _request(**params: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **params}
    )


async def _text_only_target(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """Refuses like a translating adapter; answers with the request it was sent."""
    refuse_unsupported(request, "Test", ("temperature",))
    return request


async def test_drop_leaves_out_each_refused_parameter() -> None:
    policy = ParameterPolicy("drop")
    request = _request(temperature=0.2, tools=[TOOL], logit_bias={"1": 2}, user="u")
    sent = await policy.call(_text_only_target, request)
    assert policy.dropped == ("logit_bias", "tools")
    assert sent.tools is None and "tools" not in sent.model_fields_set
    assert "logit_bias" not in sent.extra_params()
    assert (sent.temperature, sent.user) == (0.2, "u")
    assert request.tools == [TOOL]  # the next target gets the whole request


async def test_error_and_what_is_never_dropped() -> None:
    with pytest.raises(BadRequestError) as refused:
        await ParameterPolicy().call(_text_only_target, _request(logit_bias={"1": 2}))
    assert refused.value.param == "logit_bias"

    async def unreadable(request: ChatCompletionRequest) -> None:
        raise BadRequestError("no images", param="messages", code="unsupported_parameter")

    with pytest.raises(BadRequestError, match="no images"):
        await ParameterPolicy("drop").call(unreadable, _request())

    async def invalid(request: ChatCompletionRequest) -> None:
        raise BadRequestError("temperature is out of range", param="temperature")

    with pytest.raises(BadRequestError, match="out of range"):  # a bad value, not unsupported
        await ParameterPolicy("drop").call(invalid, _request(temperature=1.5))
    with pytest.raises(ValueError, match="error, drop"):
        ParameterPolicy("ignore")


async def test_a_stream_refusing_at_its_first_chunk_is_opened_again() -> None:
    opened: list[ChatCompletionRequest] = []

    async def chunks(request: ChatCompletionRequest) -> AsyncIterator[str]:
        opened.append(request)
        refuse_unsupported(request, "Test", ())
        yield "a"
        yield "b"

    policy = ParameterPolicy("drop")
    first, rest = await policy.open(chunks, _request(seed=1))
    received = [first, *[chunk async for chunk in rest]]
    assert received == ["a", "b"] and policy.dropped == ("seed",)
    assert [request.seed for request in opened] == [1, None]


async def test_a_stream_that_sends_nothing_opens_with_no_first_chunk() -> None:
    async def nothing(_request: ChatCompletionRequest) -> AsyncIterator[str]:
        return
        yield  # an async generator

    first, rest = await ParameterPolicy().open(nothing, _request())
    assert first is None and [chunk async for chunk in rest] == []
