"""Small helpers for tests: creating accounts and signing in."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from modelyard.accounts.api_tokens import create_api_token
from modelyard.accounts.users import create_user
from modelyard.db.base import Base
from modelyard.db.engine import Database
from modelyard.db.models import LlmModel, User

PASSWORD = "correct horse battery"


async def make_user(database: Database, email: str, *, staff: bool = False) -> User:
    async with database.sessions() as session:
        return await create_user(session, email=email, password=PASSWORD, is_staff=staff)


async def make_token(database: Database, user: User, name: str = "test") -> str:
    async with database.sessions() as session:
        _record, token = await create_api_token(session, user=user, name=name)
        return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the API; returns the CSRF token (the cookie stays in the client)."""
    response = await client.post("/v2/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf


async def offer_local_model(database: Database, model_id: str, task: str) -> None:
    """What an admin does to offer users a local model (a Hub id, or a folder under
    ``MODELYARD_LOCAL_MODEL_DIRS``): list it in the catalog under provider kind ``local``."""
    async with database.sessions() as session:
        session.add(
            LlmModel(provider_kind="local", model_id=model_id, display_name=model_id, task=task)
        )
        await session.commit()


async def database_text(database: Database) -> str:
    """Every row of every table as stored (encrypted columns as ciphertext)."""
    rows: list[str] = []
    async with database.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            result = await connection.execute(text(f'SELECT * FROM "{table.name}"'))
            rows.extend(repr(tuple(row)) for row in result)
    return "\n".join(rows)
