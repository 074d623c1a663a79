"""Fixtures for the chat history: the app with the conversations router, the fake OpenAI
upstream, the official SDK pointed at the app's chat route, and a second user."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from modelyard.api.routes import conversations
from modelyard.db.engine import Database
from modelyard.db.models import Conversation, ConversationMessage
from tests.gateway.conftest import asgi_http, openai_provider, upstream, user_token
from tests.helpers import make_token, make_user

__all__ = [
    "app",
    "app_sdk",
    "asgi_http",
    "conversation_count",
    "message_count",
    "openai_provider",
    "other_sdk",
    "other_token",
    "price",
    "stored_messages",
    "upstream",
    "user_token",
]

#: gpt-4o-mini in the catalog: USD per million input and output tokens.
PRICE_IN, PRICE_OUT = Decimal("0.15"), Decimal("0.60")


def price(input_tokens: int, output_tokens: int) -> Decimal:
    return (input_tokens * PRICE_IN + output_tokens * PRICE_OUT) / Decimal(1_000_000)


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The app, with the conversations router until ``create_app`` includes it."""
    if not any(getattr(route, "path", "") == "/v2/conversations/" for route in app.routes):
        app.include_router(conversations.router)
    return app


@pytest.fixture
async def other_token(database: Database) -> str:
    return await make_token(database, await make_user(database, "other@example.com"))


def _sdk(http: object, token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://testserver/v2/llm",
        api_key=token,
        http_client=http,  # type: ignore[arg-type]
        max_retries=0,
    )


@pytest.fixture
def app_sdk(asgi_http: object, user_token: str, openai_provider: int) -> openai.AsyncOpenAI:
    """The official SDK on the app's chat route, as the first user."""
    return _sdk(asgi_http, user_token)


@pytest.fixture
def other_sdk(asgi_http: object, other_token: str, openai_provider: int) -> openai.AsyncOpenAI:
    """The official SDK on the app's chat route, as another user."""
    return _sdk(asgi_http, other_token)


async def conversation_count(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Conversation)) or 0)


async def message_count(database: Database) -> int:
    async with database.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(ConversationMessage))
        return int(count or 0)


async def stored_messages(database: Database, conversation_id: int) -> list[ConversationMessage]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(ConversationMessage)
            .where(ConversationMessage.conversation_id == conversation_id)
            .order_by(ConversationMessage.id)
        )
        return list(rows)
