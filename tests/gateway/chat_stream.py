"""Chat completions over plain HTTP, every answer checked against OpenAI's published spec."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.helpers import bearer
from tests.openai_spec import assert_valid

__all__ = ["answer", "choices_by_index", "stream_chunks"]


async def answer(http: httpx.AsyncClient, token: str, body: dict[str, Any]) -> httpx.Response:
    """``POST /v1/chat/completions``; a 200's body is a valid ``CreateChatCompletionResponse``."""
    response = await http.post("/v1/chat/completions", json=body, headers=bearer(token))
    if response.status_code == 200:
        assert_valid("CreateChatCompletionResponse", response.json())
    return response


async def stream_chunks(
    http: httpx.AsyncClient, token: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """The streamed chunks of ``body`` (each a valid ``CreateChatCompletionStreamResponse``),
    up to ``[DONE]``, which must end the stream."""
    chunks: list[dict[str, Any]] = []
    done = False
    async with http.stream(
        "POST", "/v1/chat/completions", json={**body, "stream": True}, headers=bearer(token)
    ) as response:
        if response.status_code != 200:
            await response.aread()
            return response, chunks
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            assert not done, "data after [DONE]"
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
                continue
            chunk = json.loads(data)
            assert_valid("CreateChatCompletionStreamResponse", chunk)
            chunks.append(chunk)
    assert done, "the stream did not end with [DONE]"
    return response, chunks


def choices_by_index(chunks: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per choice index: its role, joined content and finish reason, from the chunks."""
    found: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            seen = found.setdefault(
                choice["index"], {"role": None, "content": "", "finish_reason": None}
            )
            delta = choice["delta"]
            seen["role"] = seen["role"] or delta.get("role")
            seen["content"] += delta.get("content") or ""
            seen["finish_reason"] = choice["finish_reason"] or seen["finish_reason"]
    return found
