"""Structured output, ``n``, ``seed`` and ``reasoning_effort`` on Gemini: the official
`openai` SDK through the gateway to the fake Gemini API, answers checked against the spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import openai
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from modelyard.db.engine import Database
from tests.fakes.fixtures import GEMINI_KEY
from tests.fakes.gemini_chat import ChatGemini
from tests.gateway.chat_stream import answer, choices_by_index, stream_chunks
from tests.gateway.conftest import add_provider

MODEL = "gemini-2.5-flash"
HELLO = [{"role": "user", "content": "hello there"}]

pytestmark = pytest.mark.usefixtures("gemini_provider")


class Step(BaseModel):
    explanation: str
    output: str | None


class Plan(BaseModel):
    city: str
    steps: list[Step]
    kind: Literal["trip", "errand"]


PLAN = Plan(city="Paris", steps=[Step(explanation="fly", output=None)], kind="trip")

#: ``Plan``'s strict JSON Schema (as the SDK sends it) in Gemini's ``Schema`` form.
PLAN_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "city": {"type": "STRING"},
        "steps": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "explanation": {"type": "STRING"},
                    "output": {"type": "STRING", "nullable": True},
                },
                "propertyOrdering": ["explanation", "output"],
                "required": ["explanation", "output"],
            },
        },
        "kind": {"type": "STRING", "format": "enum", "enum": ["trip", "errand"]},
    },
    "propertyOrdering": ["city", "steps", "kind"],
    "required": ["city", "steps", "kind"],
}


@pytest.fixture
def gemini() -> Iterator[ChatGemini]:
    with ChatGemini(keys={GEMINI_KEY}) as fake:
        yield fake


@pytest.fixture
async def gemini_provider(app: FastAPI, database: Database, gemini: ChatGemini) -> int:
    return await add_provider(database, "gemini", gemini.url, GEMINI_KEY, kind="google")


def config(fake: ChatGemini) -> dict[str, Any]:
    sent: dict[str, Any] = fake.last_request.json()
    return dict(sent.get("generationConfig") or {})


async def test_parse_returns_the_pydantic_object(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini
) -> None:
    gemini.parts = [{"text": PLAN.model_dump_json()}]
    completion = await sdk.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "plan"}], response_format=Plan
    )
    assert completion.choices[0].message.parsed == PLAN
    assert completion.choices[0].message.refusal is None
    sent = config(gemini)
    assert sent["responseMimeType"] == "application/json"
    # The fake refuses, like Gemini, any field its Schema lacks ($defs, additionalProperties…).
    assert sent["responseSchema"] == PLAN_SCHEMA


async def test_json_schema_by_hand_and_json_object(
    asgi_http: httpx.AsyncClient, user_token: str, gemini: ChatGemini
) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Reply",
        "type": "object",
        "properties": {"when": {"type": "string", "format": "date-time"}},
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    response = await answer(
        asgi_http,
        user_token,
        {"model": MODEL, "messages": HELLO, "response_format": response_format},
    )
    assert response.status_code == 200
    assert config(gemini) == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"when": {"type": "STRING", "format": "date-time"}},
            "propertyOrdering": ["when"],
        },
    }
    response = await answer(
        asgi_http,
        user_token,
        {"model": MODEL, "messages": HELLO, "response_format": {"type": "json_object"}},
    )
    assert response.status_code == 200
    assert config(gemini) == {"responseMimeType": "application/json"}


async def test_a_schema_gemini_cannot_express_is_a_400(
    asgi_http: httpx.AsyncClient, user_token: str, gemini: ChatGemini
) -> None:
    recursive = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            }
        },
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "t", "schema": recursive}}
    response = await answer(
        asgi_http,
        user_token,
        {"model": MODEL, "messages": HELLO, "response_format": response_format},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "response_format" and "recursive" in error["message"]
    assert gemini.requests == []


async def test_n_seed_and_reasoning_effort(
    asgi_http: httpx.AsyncClient, user_token: str, gemini: ChatGemini
) -> None:
    body = {"model": MODEL, "messages": HELLO, "n": 3, "seed": 11, "reasoning_effort": "low"}
    response = await answer(asgi_http, user_token, body)
    assert response.status_code == 200
    assert config(gemini) == {
        "candidateCount": 3,
        "seed": 11,
        "thinkingConfig": {"thinkingBudget": 1024},
    }
    choices = response.json()["choices"]
    assert [choice["index"] for choice in choices] == [0, 1, 2]
    assert {choice["message"]["content"] for choice in choices} == {"Echo: hello there"}
    assert len(gemini.requests) == 1  # Gemini makes the candidates itself
    response = await answer(
        asgi_http, user_token, {"model": MODEL, "messages": HELLO, "reasoning_effort": "none"}
    )
    assert config(gemini) == {"thinkingConfig": {"thinkingBudget": 0}}


async def test_streamed_candidates_are_choices(
    asgi_http: httpx.AsyncClient, user_token: str, gemini: ChatGemini
) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "one two three"}],
        "n": 2,
        "response_format": {"type": "json_object"},
        "stream_options": {"include_usage": True},
    }
    response, chunks = await stream_chunks(asgi_http, user_token, body)
    assert response.status_code == 200
    assert config(gemini) == {"candidateCount": 2, "responseMimeType": "application/json"}
    by_index = choices_by_index(chunks)
    assert sorted(by_index) == [0, 1]
    for choice in by_index.values():
        assert choice == {
            "role": "assistant",
            "content": "Echo: one two three",
            "finish_reason": "stop",
        }
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


async def test_streamed_structured_output_parses(
    sdk: openai.AsyncOpenAI, gemini: ChatGemini
) -> None:
    gemini.parts = [{"text": json.dumps(PLAN.model_dump())}]
    async with sdk.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "plan"}], response_format=Plan
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.parsed == PLAN
    assert config(gemini)["responseSchema"] == PLAN_SCHEMA
