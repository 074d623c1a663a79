"""Malformed ``/v1/responses`` bodies: always a 400 in OpenAI's error shape, never a 5xx,
and nothing reaches the upstream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import bearer
from tests.openai_spec import assert_valid
from tests.responses.tooling_openai import ToolingOpenAI

BODIES: list[Any] = [
    {},
    {"model": "gpt-4o-mini"},
    {"model": "gpt-4o-mini", "input": 3},
    {"model": "gpt-4o-mini", "input": [3]},
    {"model": "gpt-4o-mini", "input": [None]},
    {"model": "gpt-4o-mini", "input": [{"type": "message"}]},
    {"model": "gpt-4o-mini", "input": [{"role": "user"}]},
    {"model": "gpt-4o-mini", "input": [{"role": "user", "content": [3]}]},
    {"model": "gpt-4o-mini", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
    {"model": "gpt-4o-mini", "input": [{"role": "user", "content": {"a": 1}}]},
    {
        "model": "gpt-4o-mini",
        "input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": "x"}]}],
    },
    {"model": "gpt-4o-mini", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
    {"model": "gpt-4o-mini", "input": [{"type": "function_call"}]},
    {"model": "gpt-4o-mini", "input": [{"type": "function_call", "call_id": "c", "name": 5}]},
    {
        "model": "gpt-4o-mini",
        "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}],
    },
    {"model": "gpt-4o-mini", "input": [{"type": "function_call_output", "call_id": "c"}]},
    {
        "model": "gpt-4o-mini",
        "input": [{"type": "function_call_output", "call_id": 1, "output": "x"}],
    },
    {
        "model": "gpt-4o-mini",
        "input": [{"type": "function_call_output", "call_id": "c", "output": [1]}],
    },
    {"model": "gpt-4o-mini", "input": [{"role": "user", "content": "x", "extra": 1}]},
    {"model": "gpt-4o-mini", "input": "hi", "tools": [{}]},
    {"model": "gpt-4o-mini", "input": "hi", "tools": [3]},
    {"model": "gpt-4o-mini", "input": "hi", "tools": [{"type": "function"}]},
    {"model": "gpt-4o-mini", "input": "hi", "tools": [{"type": "function", "name": "f", "x": 1}]},
    {"model": "gpt-4o-mini", "input": "hi", "tool_choice": "sometimes"},
    {"model": "gpt-4o-mini", "input": "hi", "tool_choice": {"type": "function"}},
    {"model": "gpt-4o-mini", "input": "hi", "text": {"format": "json"}},
    {"model": "gpt-4o-mini", "input": "hi", "text": {"format": {"type": "json_schema"}}},
    {"model": "gpt-4o-mini", "input": "hi", "text": {"format": {"type": "json_object", "x": 1}}},
    {"model": "gpt-4o-mini", "input": "hi", "text": {"colour": "red"}},
    {"model": "gpt-4o-mini", "input": "hi", "temperature": 3},
    {"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": 0},
    {"model": "gpt-4o-mini", "input": "hi", "metadata": {"a": 1}},
    {"model": "gpt-4o-mini", "input": "hi", "metadata": {str(i): "v" for i in range(17)}},
    {"model": "gpt-4o-mini", "input": "hi", "metadata": {"k": "v" * 513}},
    {"model": "gpt-4o-mini", "input": "hi", "reasoning": {"effort": 3}},
    {"model": "gpt-4o-mini", "input": "hi", "reasoning": "high"},
    {"model": "gpt-4o-mini", "input": "hi", "previous_response_id": "x" * 100},
    {"model": "gpt-4o-mini", "input": "hi", "stream": "yes please"},
    [1, 2],
]


@pytest.mark.parametrize("body", BODIES, ids=[str(i) for i in range(len(BODIES))])
async def test_malformed_bodies_are_a_400(
    asgi_http: httpx.AsyncClient, user_token: str, upstream: ToolingOpenAI, body: Any
) -> None:
    response = await asgi_http.post("/v1/responses", headers=bearer(user_token), json=body)
    assert response.status_code == 400, response.text
    assert_valid("ErrorResponse", response.json())
    assert upstream.requests == []
