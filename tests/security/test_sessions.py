"""Sessions and tokens: same-origin checks, changes that apply on the very next request,
password change, sign out everywhere, and the client address behind proxies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from modelyard.accounts.login_throttle import MAX_FAILURES_PER_ADDRESS
from modelyard.db.engine import Database
from modelyard.db.models import ApiToken, User
from modelyard.db.types import utcnow
from modelyard.security.proxies import client_address, parse_networks
from tests.conftest import refuse_canaries
from tests.helpers import PASSWORD, bearer, login, make_token, make_user

SAME_SITE = {"Origin": "http://testserver"}
NEW_PASSWORD = "a much longer new passphrase"


def _client(app: FastAPI, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 4321))
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    )


@pytest.fixture
async def second_browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app) as http:
        yield http


def _form_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return unescape(found.group(1))


# -- same-origin checks ------------------------------------------------------------------

FOREIGN = [
    {"Origin": "null"},
    {"Origin": "https://evil.example"},
    {"Referer": "https://evil.example/page"},
    {"Origin": "null", "Referer": "http://testserver/login"},
    {"Sec-Fetch-Site": "cross-site"},
]


@pytest.mark.parametrize(
    "headers", FOREIGN, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items())
)
async def test_foreign_origins_are_refused_by_every_same_origin_check(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str]
) -> None:
    await make_user(database, "victim@example.com")
    credentials = {"email": "victim@example.com", "password": PASSWORD}
    api = await client.post("/v2/auth/login", json=credentials, headers=headers)
    assert api.status_code == 403 and api.json()["error"]["code"] == "csrf_failed"
    form = await client.post("/login", data=credentials, headers=headers)
    assert form.status_code == 403
    registered = await client.post(
        "/v2/auth/register",
        json={"email": "new@example.com", "password": PASSWORD},
        headers=headers,
    )
    assert registered.status_code == 403
    register_form = {"email": "new2@example.com", "password": PASSWORD, "confirm": PASSWORD}
    assert (await client.post("/register", data=register_form, headers=headers)).status_code == 403
    assert "modelyard_session" not in client.cookies

    await make_user(database, "staff@example.com", staff=True)
    csrf = await login(client, "staff@example.com")
    admin = await client.post(
        "/admin/llm-model/create", data={"model_id": "x", "save": "Save"}, headers=headers
    )
    assert admin.status_code == 403 and "Cross-site request refused" in admin.text
    logout = await client.post("/v2/auth/logout", headers={"X-CSRF-Token": csrf})
    assert logout.status_code == 204


async def test_same_site_and_header_less_sign_ins_pass(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "fine@example.com")
    credentials = {"email": "fine@example.com", "password": PASSWORD}
    assert (await client.post("/v2/auth/login", json=credentials)).status_code == 200
    with_origin = await client.post("/v2/auth/login", json=credentials, headers=SAME_SITE)
    assert with_origin.status_code == 200
    referred = await client.post(
        "/login", data=credentials, headers={"Referer": "http://testserver/login"}
    )
    assert referred.status_code == 303


# -- changes apply on the next request ---------------------------------------------------


async def test_admin_demotion_and_deactivation_apply_to_cached_tokens_at_once(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "boss@example.com", staff=True)
    await login(client, "boss@example.com")
    deputy = await make_user(database, "deputy@example.com", staff=True)
    token = await make_token(database, deputy)
    assert (await client.get("/v2/users", headers=bearer(token))).status_code == 200
    # The token is cached: a change this process does not make (raw SQL) is not seen yet.
    async with database.engine.begin() as connection:
        statement = text("UPDATE users SET full_name = 'raw' WHERE id = :id")
        await connection.execute(statement, {"id": deputy.id})
    me = await client.get("/v2/auth/me", headers=bearer(token))
    assert me.json()["full_name"] is None

    demoted = await client.post(
        f"/admin/user/edit/{deputy.id}",
        data={"is_active": "y", "save": "Save"},
        headers=SAME_SITE,
    )
    assert demoted.status_code == 302, demoted.text
    refused = await client.get("/v2/users", headers=bearer(token))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "staff_only"
    assert (await client.get("/v2/auth/me", headers=bearer(token))).json()["is_staff"] is False

    deactivated = await client.post(
        f"/admin/user/edit/{deputy.id}", data={"save": "Save"}, headers=SAME_SITE
    )
    assert deactivated.status_code == 302, deactivated.text
    gone = await client.get("/v2/auth/me", headers=bearer(token))
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_api_key"


async def test_any_orm_write_to_tokens_or_users_reaches_the_cache(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    alice = await make_user(database, "alice@example.com")
    bob = await make_user(database, "bob@example.com")
    alice_token, bob_token = await make_token(database, alice), await make_token(database, bob)
    for token in (alice_token, bob_token):
        assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 200
    assert len(app.state.modelyard.token_cache) == 2

    async with database.sessions() as session:  # a bulk UPDATE: which rows is unknown
        await session.execute(
            update(ApiToken).where(ApiToken.user_id == alice.id).values(revoked_at=utcnow())
        )
        await session.commit()
    assert (await client.get("/v2/auth/me", headers=bearer(alice_token))).status_code == 401
    assert (await client.get("/v2/auth/me", headers=bearer(bob_token))).status_code == 200

    async with database.sessions() as session:  # one object changed through the session
        record = await session.get(User, bob.id)
        assert record is not None
        record.is_active = False
        await session.commit()
    assert (await client.get("/v2/auth/me", headers=bearer(bob_token))).status_code == 401


async def test_last_used_bookkeeping_keeps_the_cache(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    token = await make_token(database, await make_user(database, "busy@example.com"))
    other = await make_token(database, await make_user(database, "other@example.com"))
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 200
    cache = app.state.modelyard.token_cache
    assert len(cache) == 1
    # Resolving another token writes its last_used_at: the cached one stays cached.
    assert (await client.get("/v2/auth/me", headers=bearer(other))).status_code == 200
    assert len(cache) == 2


# -- password change ---------------------------------------------------------------------


async def test_password_change_checks_and_signs_out_the_other_sessions(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database, "pw@example.com")
    token = await make_token(database, user)
    csrf = await login(client, "pw@example.com")
    await login(second_browser, "pw@example.com")
    csrf_header = {"X-CSRF-Token": csrf}

    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert (await client.post("/v2/me/password", json=body)).status_code == 403  # no CSRF
    wrong = await client.post(
        "/v2/me/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=csrf_header,
    )
    assert wrong.status_code == 400
    assert (wrong.json()["error"]["code"], wrong.json()["error"]["param"]) == (
        "wrong_password",
        "current_password",
    )
    weak = await client.post(
        "/v2/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=csrf_header,
    )
    assert weak.status_code == 400 and weak.json()["error"]["code"] == "weak_password"
    same = await client.post(
        "/v2/me/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD},
        headers=csrf_header,
    )
    assert same.status_code == 400 and same.json()["error"]["param"] == "new_password"
    assert (await second_browser.get("/v2/auth/me")).status_code == 200  # nothing changed yet

    changed = await client.post("/v2/me/password", json=body, headers=csrf_header)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"sessions_ended": 1}
    assert (await second_browser.get("/v2/auth/me")).status_code == 401
    assert (await client.get("/v2/auth/me")).status_code == 200
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 200
    old = await client.post("/v2/auth/login", json={"email": user.email, "password": PASSWORD})
    assert old.status_code == 401
    new = {"email": user.email, "password": NEW_PASSWORD}
    assert (await second_browser.post("/v2/auth/login", json=new)).status_code == 200


async def test_password_change_with_a_token_ends_every_web_session(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database, "script@example.com")
    token = await make_token(database, user)
    await login(client, "script@example.com")
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    changed = await client.post("/v2/me/password", json=body, headers=bearer(token))
    assert changed.json() == {"sessions_ended": 1}
    assert (await client.get("/v2/auth/me")).status_code == 401


# -- sign out everywhere -----------------------------------------------------------------


async def test_sign_out_everywhere_ends_every_session_and_tokens_only_when_asked(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database, "many@example.com")
    other = await make_user(database, "bystander@example.com")
    token = await make_token(database, user)
    bystander_token = await make_token(database, other)
    csrf = await login(client, "many@example.com")
    second_csrf = await login(second_browser, "many@example.com")
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 200  # cached

    assert (await client.post("/v2/me/sessions/revoke")).status_code == 403  # no CSRF
    ended = await client.post("/v2/me/sessions/revoke", headers={"X-CSRF-Token": csrf})
    assert ended.status_code == 200
    assert ended.json() == {"sessions_ended": 2, "api_tokens_revoked": 0}
    assert (await client.get("/v2/auth/me")).status_code == 401
    assert (await second_browser.get("/v2/auth/me")).status_code == 401
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 200

    second_csrf = await login(second_browser, "many@example.com")
    everything = await second_browser.post(
        "/v2/me/sessions/revoke",
        json={"revoke_api_tokens": True},
        headers={"X-CSRF-Token": second_csrf},
    )
    assert everything.json() == {"sessions_ended": 1, "api_tokens_revoked": 1}
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 401
    bystander = await client.get("/v2/auth/me", headers=bearer(bystander_token))
    assert bystander.json()["email"] == "bystander@example.com"


async def test_profile_forms_change_the_password_and_sign_out_everywhere(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(database, "web@example.com")
    await login(client, "web@example.com")
    await login(second_browser, "web@example.com")
    page = await client.get("/profile")
    assert 'action="/profile/password"' in page.text
    assert 'action="/profile/sessions/revoke"' in page.text
    csrf = _form_csrf(page.text)

    no_csrf = await client.post(
        "/profile/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert no_csrf.status_code == 403
    wrong = await client.post(
        "/profile/password",
        data={
            "csrf_token": csrf,
            "current_password": "not it at all",
            "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 400 and "The current password is wrong." in wrong.text
    differ = await client.post(
        "/profile/password",
        data={
            "csrf_token": csrf,
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm": "something else",
        },
    )
    assert differ.status_code == 400 and "The two new passwords differ" in differ.text

    changed = await client.post(
        "/profile/password",
        data={
            "csrf_token": csrf,
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/profile?done=password"
    notice = await client.get("/profile?done=password")
    assert "Your other sessions were signed out." in notice.text
    assert (await second_browser.get("/profile")).status_code == 303  # to the sign-in page

    await login(second_browser, "web@example.com", NEW_PASSWORD)
    token = await make_token(database, user)
    out = await client.post(
        "/profile/sessions/revoke", data={"csrf_token": csrf, "revoke_api_tokens": "yes"}
    )
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await client.get("/v2/auth/me")).status_code == 401
    assert (await second_browser.get("/v2/auth/me")).status_code == 401
    assert (await client.get("/v2/auth/me", headers=bearer(token))).status_code == 401


# -- the client address ------------------------------------------------------------------


def test_forwarded_for_is_read_only_from_trusted_proxies() -> None:
    trusted = parse_networks("10.0.0.1, 192.168.0.0/16")
    assert client_address("203.0.113.9", ["1.2.3.4"], trusted) == "203.0.113.9"
    assert client_address("10.0.0.1", ["1.2.3.4"], ()) == "10.0.0.1"
    assert client_address("10.0.0.1", ["1.2.3.4"], trusted) == "1.2.3.4"
    # The client wrote the left part; the right-most untrusted hop is the real client.
    assert client_address("10.0.0.1", ["6.6.6.6, 1.2.3.4, 192.168.3.3"], trusted) == "1.2.3.4"
    assert client_address("10.0.0.1", ["6.6.6.6", "1.2.3.4:5555"], trusted) == "1.2.3.4"
    assert client_address("10.0.0.1", ["not-an-address"], trusted) == "10.0.0.1"
    assert client_address("10.0.0.1", [], trusted) == "10.0.0.1"
    with pytest.raises(ValueError, match=re.escape("'10.0.0.300'")):
        parse_networks("10.0.0.1, 10.0.0.300")


async def _fail_sign_ins(http: httpx.AsyncClient, count: int, forwarded: list[str]) -> None:
    for number in range(count):
        response = await http.post(
            "/v2/auth/login",
            json={"email": f"nobody{number}@example.com", "password": "wrong password"},
            headers={"X-Forwarded-For": forwarded[number % len(forwarded)]},
        )
        assert response.status_code == 401, response.text


async def test_spoofed_forwarded_for_does_not_escape_the_address_throttle(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "real@example.com")
    spoofed = [f"198.51.100.{n}" for n in range(1, 250)]
    await _fail_sign_ins(client, MAX_FAILURES_PER_ADDRESS, spoofed)
    response = await client.post(
        "/v2/auth/login",
        json={"email": "real@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.251"},
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "login_throttled"


async def test_clients_behind_a_trusted_proxy_are_throttled_apart(
    app: FastAPI, database: Database
) -> None:
    app.state.modelyard.settings.trusted_proxies = "10.0.0.0/8"
    await make_user(database, "real@example.com")
    right = {"email": "real@example.com", "password": PASSWORD}
    async with _client(app, peer="10.0.0.7") as proxy:
        await _fail_sign_ins(proxy, MAX_FAILURES_PER_ADDRESS, ["6.6.6.6, 203.0.113.5"])
        throttled = await proxy.post(
            "/v2/auth/login", json=right, headers={"X-Forwarded-For": "203.0.113.5"}
        )
        assert throttled.status_code == 429
        other_client = await proxy.post(
            "/v2/auth/login", json=right, headers={"X-Forwarded-For": "203.0.113.6"}
        )
        assert other_client.status_code == 200, other_client.text
    # A peer that is not a trusted proxy cannot claim to be the other client.
    async with _client(app, peer="203.0.113.5") as direct:
        spoof = await direct.post(
            "/v2/auth/login", json=right, headers={"X-Forwarded-For": "203.0.113.7"}
        )
        assert spoof.status_code == 429
