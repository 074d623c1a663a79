"""The server-rendered pages over HTTP (no browser): who may see them, the headers they
send, forms and their inline errors, CSRF, and escaping of everything shown."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import LlmModel, User
from modelyard.providers import records
from modelyard.providers.kinds import ProviderKind
from modelyard.web.rendering import CONTENT_SECURITY_POLICY
from tests.conftest import refuse_canaries
from tests.helpers import PASSWORD, bearer, login, make_token, make_user
from tests.web.page_inventory import PageInventory

CANARY_KEY = "sk-pages-canary-0123456789abcdef"
PAGES = ["/language-models", "/language-models/gpt-4o-mini", "/profile", "/usage"]


async def sign_in(
    client: httpx.AsyncClient, database: Database, email: str = "u@example.com"
) -> str:
    await make_user(database, email)
    return await login(client, email)


@pytest.fixture
async def open_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that does not follow redirects and fails on any canary key it receives."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as http:
        yield http


# -- who sees what -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "next_"),
    [
        ("/language-models", "/language-models"),
        ("/language-models/gpt-4o-mini?c=3", "/language-models/gpt-4o-mini%3Fc%3D3"),
        ("/chat", "/chat"),
        ("/profile", "/profile"),
        ("/usage", "/usage"),
    ],
)
async def test_pages_send_anonymous_visitors_to_sign_in(
    open_client: httpx.AsyncClient, path: str, next_: str
) -> None:
    response = await open_client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={next_}"


async def test_the_home_page_is_a_dashboard_for_the_signed_in(
    open_client: httpx.AsyncClient, database: Database
) -> None:
    assert (await open_client.get("/")).headers["location"] == "/login"
    await make_user(database, "boss@example.com", staff=True)
    await login(open_client, "boss@example.com")
    home = await open_client.get("/")
    assert home.status_code == 200
    assert "boss@example.com</strong> (staff)" in home.text
    assert 'id="home-cost">$0.00<' in home.text
    assert "No conversations yet." in home.text
    assert 'href="/admin/"' in home.text
    assert (await open_client.get("/login?next=/usage")).headers["location"] == "/usage"
    assert (await open_client.get("/login?next=//evil.example")).headers["location"] == "/"
    # No chat model is usable without a key: /chat is the chat page, saying so.
    chat = await open_client.get("/chat")
    assert chat.status_code == 200 and "No chat model is ready" in chat.text


async def test_a_bearer_token_is_not_a_browser_session(
    open_client: httpx.AsyncClient, database: Database
) -> None:
    token = await make_token(database, await make_user(database, "api@example.com"))
    response = await open_client.get("/profile", headers=bearer(token))
    assert response.status_code == 303


# -- headers and what pages contain -------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/register", "/", *PAGES])
async def test_pages_send_security_headers_and_run_nothing_inline(
    open_client: httpx.AsyncClient, database: Database, path: str
) -> None:
    if path not in ("/login", "/register"):
        await sign_in(open_client, database)
    response = await open_client.get(path)
    assert response.status_code == 200, response.text
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    if path not in ("/login", "/register"):
        assert headers["cache-control"] == "no-store"
    inventory = PageInventory()
    inventory.feed(response.text)
    assert inventory.inline_scripts == 0
    assert inventory.handlers == []
    assert inventory.style_attributes == 0 and inventory.style_tags == 0
    assert inventory.external == []


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/static/app.css", "text/css"),
        ("/static/chat.js", "javascript"),
        ("/static/highlight.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
async def test_static_files_are_served_as_what_they_are(
    open_client: httpx.AsyncClient, path: str, kind: str
) -> None:
    response = await open_client.get(path)
    assert response.status_code == 200
    assert kind in response.headers["content-type"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_every_static_file_a_template_names_exists() -> None:
    web = Path(__file__).resolve().parents[2] / "src" / "modelyard" / "web"
    named = set()
    for template in (web / "templates").glob("*.html"):
        named |= set(re.findall(r'"/static/([^"]+)"', template.read_text()))
    assert named >= {"app.css", "common.js", "chat.js", "theme.js", "highlight.css"}
    assert all((web / "static" / name).is_file() for name in named), named


# -- sign in, register, sign out ------------------------------------------------------------


async def test_a_failed_sign_in_is_shown_inline_and_escaped(
    open_client: httpx.AsyncClient,
) -> None:
    response = await open_client.post(
        "/login", data={"email": "<script>alert(1)</script>@x.org", "password": "nope"}
    )
    assert response.status_code == 401
    assert 'id="login-error"' in response.text and "Incorrect e-mail or password." in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@x.org" in response.text
    assert "<script>alert" not in response.text
    assert "modelyard_session" not in response.headers.get("set-cookie", "")


async def test_repeated_failed_sign_ins_wait_on_the_form_too(
    open_client: httpx.AsyncClient,
) -> None:
    from modelyard.accounts.login_throttle import MAX_FAILURES_PER_ACCOUNT

    wrong = {"email": "target@example.com", "password": "guess"}
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert (await open_client.post("/login", data=wrong)).status_code == 401
    response = await open_client.post("/login", data=wrong)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.text and 'id="login-error"' in response.text


async def test_sign_in_from_another_site_is_refused(open_client: httpx.AsyncClient) -> None:
    response = await open_client.post(
        "/login",
        data={"email": "a@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


async def users(database: Database) -> list[User]:
    async with database.sessions() as session:
        return list(await session.scalars(select(User)))


async def test_register_creates_the_account_and_signs_it_in(
    open_client: httpx.AsyncClient, database: Database
) -> None:
    page = await open_client.get("/register")
    assert page.status_code == 200 and 'action="/register"' in page.text
    response = await open_client.post(
        "/register",
        data={
            "full_name": "Grace <b>Hopper</b>",
            "email": " Grace@Example.com ",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/language-models"
    me = await open_client.get("/v2/auth/me")
    assert me.status_code == 200
    assert me.json()["email"] == "grace@example.com"
    assert me.json()["trial_ends_at"] is not None
    profile = await open_client.get("/profile")
    assert "Grace &lt;b&gt;Hopper&lt;/b&gt;" in profile.text


@pytest.mark.parametrize(
    ("form", "status", "field", "message"),
    [
        (
            {"email": "nope", "password": PASSWORD, "confirm": PASSWORD},
            400,
            "email",
            "valid e-mail",
        ),
        ({"email": "a@example.com", "password": "short", "confirm": "short"}, 400, "password", "8"),
        (
            {"email": "a@example.com", "password": PASSWORD, "confirm": "other"},
            400,
            "confirm",
            "differ",
        ),
        (
            {"email": "taken@example.com", "password": PASSWORD, "confirm": PASSWORD},
            409,
            "email",
            "exists",
        ),
    ],
)
async def test_register_errors_are_shown_next_to_their_field(
    open_client: httpx.AsyncClient,
    database: Database,
    form: dict[str, str],
    status: int,
    field: str,
    message: str,
) -> None:
    await make_user(database, "taken@example.com")
    response = await open_client.post("/register", data=form)
    assert response.status_code == status
    assert f'id="{field}-error"' in response.text
    start = response.text.index(f'id="{field}-error"')
    assert message in response.text[start : start + 300]
    assert f'value="{form["email"]}"' in response.text
    assert PASSWORD not in response.text
    assert len(await users(database)) == 1


async def test_closed_registration(settings: Settings) -> None:
    closed = create_app(settings.model_copy(update={"allow_registration": False}), system_keys={})
    try:
        transport = httpx.ASGITransport(app=closed)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            page = await http.get("/register")
            assert page.status_code == 403
            assert "Registration is closed" in page.text
            login_page = await http.get("/login")
            assert 'href="/register"' not in login_page.text
            response = await http.post(
                "/register",
                data={"email": "new@example.com", "password": PASSWORD, "confirm": PASSWORD},
            )
            assert response.status_code == 403
        assert await users(closed.state.modelyard.database) == []
    finally:
        await closed.state.modelyard.aclose()


async def test_sign_out_needs_the_csrf_token(
    open_client: httpx.AsyncClient, database: Database
) -> None:
    csrf = await sign_in(open_client, database)
    refused = await open_client.post("/logout", data={})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert (await open_client.get("/profile")).status_code == 200
    done = await open_client.post("/logout", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert (await open_client.get("/profile")).status_code == 303


async def test_cookie_writes_without_the_csrf_header_are_refused(
    open_client: httpx.AsyncClient, database: Database
) -> None:
    csrf = await sign_in(open_client, database)
    refused = await open_client.patch(
        "/v2/users/me/api-key", json={"provider": "openai", "api_key": CANARY_KEY}
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert "has_openai_key" not in refused.text
    assert (await open_client.get("/v2/users/me")).json()["has_openai_key"] is False
    for method, path, body in (
        ("POST", "/web/api/markdown", {"text": "hi"}),
        ("POST", "/web/api/chat/completions?replace_from=1", {"model": "x", "messages": []}),
    ):
        response = await open_client.request(method, path, json=body)
        assert response.status_code == 403, path
    rendered = await open_client.post(
        "/web/api/markdown", json={"text": "**hi**"}, headers={"X-CSRF-Token": csrf}
    )
    assert rendered.json() == {"html": "<p><strong>hi</strong></p>\n"}


# -- the models page ---------------------------------------------------------------------


async def add_model(database: Database, **values: object) -> None:
    async with database.sessions() as session:
        session.add(LlmModel(**values))
        await session.commit()


async def test_models_page_lists_usable_models_and_counts_the_others(
    open_client: httpx.AsyncClient, database: Database
) -> None:
    await sign_in(open_client, database)
    page = (await open_client.get("/language-models")).text
    usable = page[page.index('id="usable-models"') : page.index('id="locked-title"')]
    assert "MiniLM L6 v2" in usable and "GPT-4o mini" not in usable
    async with database.sessions() as session:
        total = await session.scalar(
            select(func.count()).select_from(LlmModel).where(LlmModel.is_active.is_(True))
        )
    assert f"{(total or 0) - 1} more models need a key" in page
    assert 'href="/profile#key-openai"' in page

    async with database.sessions() as session:
        await records.create_provider(
            session,
            actor=None,
            values={"name": "team", "kind": "openai", "api_key": CANARY_KEY, "is_default": True},
        )
    page = (await open_client.get("/language-models")).text
    usable = page[page.index('id="usable-models"') : page.index('id="locked-title"')]
    assert "GPT-4o mini" in usable and "$0.15" in usable and "128K" in usable
    assert 'href="/language-models/gpt-4o-mini"' in usable
    assert "Claude" not in usable
    assert (await open_client.get("/chat")).headers["location"].startswith("/language-models/")


async def test_system_keys_make_models_usable(settings: Settings, database: Database) -> None:
    await make_user(database, "sys@example.com")
    keyed = create_app(settings, system_keys={ProviderKind.GROQ: ["gsk_system0123456789"]})
    try:
        transport = httpx.ASGITransport(app=keyed)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            await login(http, "sys@example.com")
            page = (await http.get("/language-models")).text
            usable = page[page.index('id="usable-models"') : page.index('id="locked-title"')]
            assert "Llama 3.3 70B (Groq)" in usable
            # Groq's "openai/gpt-oss-120b" would mean OpenAI's model: the page names the kind.
            assert 'href="/language-models/groq/openai/gpt-oss-120b"' in usable
            chat = (await http.get("/language-models/groq/openai/gpt-oss-120b")).text
            assert '<option value="groq/openai/gpt-oss-120b" data-vision="false" selected>' in chat
            profile = (await http.get("/profile")).text
            groq = profile[profile.index('id="key-groq"') :]
            assert "Also available through this server." in groq[: groq.index("</li>")]
    finally:
        await keyed.state.modelyard.aclose()


async def test_catalog_text_is_escaped(open_client: httpx.AsyncClient, database: Database) -> None:
    await add_model(
        database,
        provider_kind="local",
        model_id="evil<script>",
        display_name="<img src=x onerror=alert(1)>",
        description="<script>alert(2)</script>",
        task="chat",
    )
    await sign_in(open_client, database)
    page = (await open_client.get("/language-models")).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<script>alert" not in page
    assert 'href="/language-models/local/evil%3Cscript%3E"' in page
    for path in ("/language-models/local/evil%3Cscript%3E", "/language-models/evil%3Cscript%3E"):
        chat = (await open_client.get(path)).text
        assert '<option value="local/evil&lt;script&gt;" data-vision="false" selected>' in chat
        assert "<script>alert" not in chat


# -- the chat and profile pages --------------------------------------------------------------


async def test_chat_page_for_a_model_without_a_key_says_what_to_do(
    open_client: httpx.AsyncClient, database: Database
) -> None:
    await sign_in(open_client, database)
    page = (await open_client.get("/language-models/claude-sonnet-4-5?c=12")).text
    assert 'id="model-key-hint"' in page
    assert "You have no key for Anthropic yet." in page
    assert 'href="/profile#key-anthropic"' in page
    assert 'data-model="claude-sonnet-4-5"' in page and 'data-conversation="12"' in page
    unknown = (await open_client.get("/language-models/someone/else<b>?c=x")).text
    assert '<option value="someone/else&lt;b&gt;" data-vision="false" selected>' in unknown
    assert 'data-conversation=""' in unknown
    for odd in ("%C2%B2", "-1", "0", "99999999999"):
        response = await open_client.get(f"/language-models/gpt-4o-mini?c={odd}")
        assert response.status_code == 200 and 'data-conversation=""' in response.text


async def test_profile_shows_whether_a_key_is_set_never_the_key(
    open_client: httpx.AsyncClient, database: Database
) -> None:
    csrf = await sign_in(open_client, database)
    page = (await open_client.get("/profile")).text
    assert page.count(">Not set<") == 5
    assert 'href="https://platform.openai.com/api-keys"' in page
    assert 'type="password"' in page and 'autocomplete="off"' in page
    saved = await open_client.patch(
        "/v2/users/me/api-key",
        json={"provider": "openai", "api_key": CANARY_KEY},
        headers={"X-CSRF-Token": csrf},
    )
    assert saved.status_code == 200
    page = (await open_client.get("/profile")).text  # refuse_canaries checks the key is absent
    openai = page[page.index('id="key-openai"') :]
    openai = openai[: openai.index("</li>")]
    assert ">Key set<" in openai and "Replace key" in openai
    assert page.count(">Not set<") == 4
