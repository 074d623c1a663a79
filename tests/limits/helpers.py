"""Helpers for the limits tests: set a subject's limits, find a token's record."""

from __future__ import annotations

from typing import Any

import httpx
import openai
from fastapi import FastAPI
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import ApiToken
from modelyard.limits.records import LimitsSpec, put_limits
from modelyard.limits.rules import SubjectKind
from modelyard.security.tokens import digest
from tests.conftest import refuse_canaries

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
#: 100 words: the fake upstream counts 100 prompt and 101 answer tokens, so a request to
#: gpt-4o-mini ($0.15 / $0.60 per million) costs $0.0000756.
LONG_ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": " ".join(["word"] * 100)}]


async def token_record(database: Database, token: str) -> ApiToken:
    async with database.sessions() as session:
        record = await session.scalar(
            select(ApiToken).where(ApiToken.token_digest == digest(token))
        )
    assert record is not None
    return record


async def set_limits(
    apps: list[FastAPI], kind: SubjectKind, subject_id: int, **values: Any
) -> None:
    """Store limits directly (as another process would) and make each app see them now."""
    state = apps[0].state.modelyard
    async with state.database.sessions() as session:
        await put_limits(
            session, actor=None, kind=kind, subject_id=subject_id, spec=LimitsSpec(**values)
        )
    for app in apps:
        app.state.modelyard.limits.invalidate(kind, subject_id)


def sdk_for(app: FastAPI, token: str, clients: list[httpx.AsyncClient]) -> openai.AsyncOpenAI:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    )
    clients.append(client)
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=token, http_client=client, max_retries=0
    )
