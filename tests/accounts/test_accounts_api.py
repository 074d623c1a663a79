"""Accounts over HTTP: register, log in with a cookie and CSRF, API tokens, staff routes."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from modelyard.db.engine import Database
from modelyard.db.models import ApiToken, User
from modelyard.db.types import utcnow
from tests.helpers import PASSWORD, bearer, login, make_token, make_user


async def test_register_then_login_sets_http_only_cookie(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v2/auth/register", json={"email": "New@Example.com", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "new@example.com"
    assert "password" not in created.text and "hash" not in created.text

    response = await client.post(
        "/v2/auth/login", json={"email": "NEW@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    cookie_header = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith("modelyard_session=")
    )
    assert "HttpOnly" in cookie_header and "SameSite=lax" in cookie_header
    me = await client.get("/v2/auth/me")
    assert me.status_code == 200 and me.json()["email"] == "new@example.com"


async def test_wrong_password_and_unknown_email_are_one_error(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "known@example.com")
    wrong = await client.post(
        "/v2/auth/login", json={"email": "known@example.com", "password": "nope-nope"}
    )
    unknown = await client.post(
        "/v2/auth/login", json={"email": "ghost@example.com", "password": "nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["type"] == "authentication_error"


async def test_duplicate_registration_is_409(client: httpx.AsyncClient, database: Database) -> None:
    await make_user(database, "dup@example.com")
    response = await client.post(
        "/v2/auth/register", json={"email": "DUP@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json()["error"]["param"] == "email"


async def test_cookie_requests_that_change_state_need_the_csrf_token(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "csrf@example.com")
    csrf = await login(client, "csrf@example.com")
    refused = await client.post("/v2/tokens", json={"name": "laptop"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    forged = await client.post("/v2/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "bad"})
    assert forged.status_code == 403
    accepted = await client.post(
        "/v2/tokens", json={"name": "laptop"}, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 201


async def test_cross_site_login_is_refused(client: httpx.AsyncClient, database: Database) -> None:
    await make_user(database, "xsite@example.com")
    response = await client.post(
        "/v2/auth/login",
        json={"email": "xsite@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


async def test_logout_ends_the_session(client: httpx.AsyncClient, database: Database) -> None:
    await make_user(database, "bye@example.com")
    csrf = await login(client, "bye@example.com")
    cookie = client.cookies.get("modelyard_session")
    response = await client.post("/v2/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    client.cookies.set("modelyard_session", cookie or "")
    assert (await client.get("/v2/auth/me")).status_code == 401


async def test_token_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database, "tok@example.com")
    first = await make_token(database, user)
    response = await client.post("/v2/tokens", json={"name": "ci"}, headers=bearer(first))
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("myd_") and len(token) > 40
    assert response.json()["display_prefix"] == token[:10]

    listed = await client.get("/v2/tokens", headers=bearer(token))
    assert listed.status_code == 200
    assert token not in listed.text and {t["name"] for t in listed.json()} == {"test", "ci"}
    async with database.engine.connect() as connection:
        rows = (await connection.exec_driver_sql("SELECT token_digest FROM api_tokens")).all()
    assert all(token not in str(row) for row in rows)


async def test_revoked_token_stops_working_and_others_cannot_revoke(
    client: httpx.AsyncClient, database: Database
) -> None:
    alice = await make_user(database, "alice@example.com")
    bob = await make_user(database, "bob@example.com")
    alice_token = await make_token(database, alice)
    bob_token = await make_token(database, bob)
    listed = (await client.get("/v2/tokens", headers=bearer(alice_token))).json()
    alice_token_id = listed[0]["id"]

    by_bob = await client.delete(f"/v2/tokens/{alice_token_id}", headers=bearer(bob_token))
    assert by_bob.status_code == 404
    assert (await client.get("/v2/auth/me", headers=bearer(alice_token))).status_code == 200

    revoked = await client.delete(f"/v2/tokens/{alice_token_id}", headers=bearer(alice_token))
    assert revoked.status_code == 204
    after = await client.get("/v2/auth/me", headers=bearer(alice_token))
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_api_key"
    assert (await client.get("/v2/auth/me", headers=bearer(bob_token))).json()["email"] == (
        "bob@example.com"
    )


async def test_last_used_time_is_recorded(
    client: httpx.AsyncClient, database: Database, app: FastAPI
) -> None:
    user = await make_user(database, "used@example.com")
    token = await make_token(database, user)
    before = (await client.get("/v2/tokens", headers=bearer(token))).json()[0]
    assert before["last_used_at"] is not None
    async with database.sessions() as session:
        old = utcnow() - timedelta(hours=1)
        await session.execute(update(ApiToken).values(last_used_at=old))
        await session.commit()
    app.state.modelyard.token_cache.clear()  # as when its TTL has run out
    await client.get("/v2/auth/me", headers=bearer(token))
    after = (await client.get("/v2/tokens", headers=bearer(token))).json()[0]
    assert after["last_used_at"] > before["last_used_at"]


async def test_expired_token_and_inactive_user_are_refused(
    client: httpx.AsyncClient, database: Database, app: FastAPI
) -> None:
    user = await make_user(database, "exp@example.com")
    token = await make_token(database, user)
    async with database.sessions() as session:
        await session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 401
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 401

    other = await make_user(database, "inactive@example.com")
    other_token = await make_token(database, other)
    async with database.sessions() as session:
        await session.execute(update(User).where(User.id == other.id).values(is_active=False))
        await session.commit()
    app.state.modelyard.token_cache.clear()  # as when its TTL has run out
    assert (await client.get("/v2/auth/me", headers=bearer(other_token))).status_code == 401
    refused = await client.post(
        "/v2/auth/login", json={"email": "inactive@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 401 and "deactivated" in refused.json()["error"]["message"]


async def test_staff_routes_refuse_non_staff(client: httpx.AsyncClient, database: Database) -> None:
    staff = await make_user(database, "staff@example.com", staff=True)
    member = await make_user(database, "member@example.com")
    assert (await client.get("/v2/users")).status_code == 401
    forbidden = await client.get("/v2/users", headers=bearer(await make_token(database, member)))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["type"] == "permission_error"
    allowed = await client.get("/v2/users", headers=bearer(await make_token(database, staff)))
    assert allowed.status_code == 200
    assert [u["email"] for u in allowed.json()] == ["staff@example.com", "member@example.com"]


async def test_token_expiry_must_be_in_the_future(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await make_token(database, await make_user(database, "future@example.com"))
    response = await client.post(
        "/v2/tokens",
        json={"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        headers=bearer(token),
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "expires_at"


async def test_failed_sign_ins_are_throttled_per_account(
    client: httpx.AsyncClient, database: Database
) -> None:
    from modelyard.accounts.login_throttle import MAX_FAILURES_PER_ACCOUNT

    await make_user(database, "guessed@example.com")
    other = await make_user(database, "other@example.com")
    wrong = {"email": "GUESSED@example.com", "password": "not the password"}
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        response = await client.post("/v2/auth/login", json=wrong)
        assert response.status_code == 401
    # Now even the right password waits: guessing gains nothing.
    right = {"email": "guessed@example.com", "password": PASSWORD}
    response = await client.post("/v2/auth/login", json=right)
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "login_throttled"
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60 + 1
    # Another account is not locked out by it.
    response = await client.post(
        "/v2/auth/login", json={"email": other.email, "password": PASSWORD}
    )
    assert response.status_code == 200


async def test_throttle_counts_are_shared_through_redis() -> None:
    from modelyard.accounts.login_throttle import MAX_FAILURES_PER_ACCOUNT, LoginThrottle
    from modelyard.errors import RateLimitError
    from tests.gateway.redis_helpers import close_client, new_prefix, open_client

    redis = await open_client()
    prefix = new_prefix()
    try:
        first, second = LoginThrottle(redis, prefix), LoginThrottle(redis, prefix)
        for _ in range(MAX_FAILURES_PER_ACCOUNT):
            await first.failed("shared@example.com", "10.0.0.1")
        with pytest.raises(RateLimitError):
            await second.check("shared@example.com", "10.0.0.2")
        await second.succeeded("shared@example.com")
        await first.check("shared@example.com", "10.0.0.1")
    finally:
        await close_client(redis, prefix)


async def test_cookies_are_secure_behind_https(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    app.state.modelyard.settings.secure_cookies = True
    await make_user(database, "secure@example.com")
    response = await client.post(
        "/v2/auth/login", json={"email": "secure@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    cookies = {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}
    session, csrf = cookies["modelyard_session"], cookies["modelyard_csrf"]
    assert "Secure" in session and "HttpOnly" in session and "SameSite=lax" in session
    assert "Secure" in csrf and "SameSite=strict" in csrf and "HttpOnly" not in csrf
