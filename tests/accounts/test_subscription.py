"""Chat needs a subscription or trial when MODELYARD_REQUIRE_SUBSCRIPTION is on."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from modelyard.api.deps import SubscribedUser
from modelyard.db.engine import Database
from modelyard.db.models import User
from modelyard.db.types import utcnow
from tests.helpers import PASSWORD, bearer, make_token, make_user


@pytest.fixture
def chat_app(app: FastAPI) -> FastAPI:
    @app.post("/test/chat")
    async def chat(user: SubscribedUser) -> dict[str, str]:
        return {"email": user.email}

    app.state.modelyard.settings.require_subscription = True
    return app


async def _set(app: FastAPI, email: str, **values: object) -> None:
    """Change a user as the admin would; the token cache forgets them (as after its TTL)."""
    async with app.state.modelyard.database.sessions() as session:
        await session.execute(update(User).where(User.email == email).values(**values))
        await session.commit()
    app.state.modelyard.token_cache.clear()


async def test_subscription_trial_and_staff(
    chat_app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    token = bearer(await make_token(database, await make_user(database, "pay@example.com")))
    refused = await client.post("/test/chat", headers=token)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "subscription_required"
    assert "Subscription required" in refused.json()["error"]["message"]

    await _set(chat_app, "pay@example.com", trial_ends_at=utcnow() + timedelta(days=1))
    assert (await client.post("/test/chat", headers=token)).status_code == 200
    await _set(chat_app, "pay@example.com", trial_ends_at=utcnow() - timedelta(days=1))
    ended = await client.post("/test/chat", headers=token)
    assert ended.status_code == 402 and "trial ended on" in ended.json()["error"]["message"]
    await _set(chat_app, "pay@example.com", has_subscription=True)
    assert (await client.post("/test/chat", headers=token)).status_code == 200

    staff = bearer(
        await make_token(database, await make_user(database, "st@example.com", staff=True))
    )
    assert (await client.post("/test/chat", headers=staff)).status_code == 200
    chat_app.state.modelyard.settings.require_subscription = False
    await _set(chat_app, "pay@example.com", has_subscription=False)
    assert (await client.post("/test/chat", headers=token)).status_code == 200


async def test_new_accounts_get_the_configured_trial(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.modelyard.settings.trial_days = 7
    created = await client.post(
        "/v2/auth/register", json={"email": "trial@example.com", "password": PASSWORD}
    )
    trial_end = datetime.fromisoformat(created.json()["trial_ends_at"])
    assert timedelta(days=6, hours=23) < trial_end - utcnow() <= timedelta(days=7)
    app.state.modelyard.settings.trial_days = 0
    none = await client.post(
        "/v2/auth/register", json={"email": "notrial@example.com", "password": PASSWORD}
    )
    assert none.json()["trial_ends_at"] is None
