"""Fuzzing the web app's forms, pages and ``/web/api`` routes (Hypothesis), signed in
through the real ``/login`` form and sending the session's CSRF token, so the hostile
input reaches the handlers: no request may get a 5xx, and no error may reveal anything
of the server (paths, tracebacks, SQL). On SQLite and PostgreSQL (``conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.api.session_cookies import CSRF_COOKIE
from tests.security.conftest import USER_EMAIL, FuzzServer, assert_reveals_nothing
from tests.security.hostile import (
    HOSTILE_NUMBERS,
    form_bytes,
    fuzz_settings,
    hostile_text,
    hostile_value,
    json_bytes,
    path_part,
)

#: Examples per form or route, and for the forms that hash a password (slow on purpose).
EXAMPLES = 20
PASSWORD_EXAMPLES = 8
#: Examples for the pages (each example requests eight of them).
PAGE_EXAMPLES = 12
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def browser(fuzz_server: FuzzServer) -> Iterator[httpx.Client]:
    """The plain user's browser: session cookie, and the CSRF token in the header."""
    client = fuzz_server.sign_in(USER_EMAIL)
    client.headers["X-CSRF-Token"] = client.cookies[CSRF_COOKIE]
    yield client
    client.close()


def check(response: httpx.Response, server: FuzzServer) -> None:
    request = f"{response.request.method} {response.request.url.raw_path[:120]!r}"
    assert response.status_code < 500, f"{request} → {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert_reveals_nothing(response.text, server.data_dir)
        if response.headers.get("content-type", "").startswith("application/json"):
            assert set(response.json()) == {"error"}, response.text[:300]


def test_the_browser_is_signed_in(browser: httpx.Client) -> None:
    """The fuzz input reaches the handlers: the session and its CSRF token work."""
    response = browser.post("/web/api/markdown", json={"text": "**hi**"})
    assert response.status_code == 200, response.text
    assert response.json()["html"] == "<p><strong>hi</strong></p>\n"
    assert browser.get("/profile", follow_redirects=False).status_code == 200


@given(email=hostile_text, password=hostile_text, next_=hostile_text)
@fuzz_settings(PASSWORD_EXAMPLES)
def test_login_form(fuzz_server: FuzzServer, email: str, password: str, next_: str) -> None:
    with httpx.Client(base_url=fuzz_server.base, timeout=30) as anonymous:
        body = form_bytes({"email": email, "password": password, "next": next_})
        response = anonymous.post("/login", content=body, headers=FORM)
    check(response, fuzz_server)
    assert response.status_code != 303, "a hostile password signed in"


@given(email=hostile_text, full_name=hostile_text, password=hostile_text, confirm=hostile_text)
@fuzz_settings(PASSWORD_EXAMPLES)
def test_register_form(
    fuzz_server: FuzzServer, email: str, full_name: str, password: str, confirm: str
) -> None:
    with httpx.Client(base_url=fuzz_server.base, timeout=30) as anonymous:
        fields = {"email": email, "full_name": full_name, "password": password, "confirm": confirm}
        response = anonymous.post("/register", content=form_bytes(fields), headers=FORM)
    check(response, fuzz_server)


@given(current=hostile_text, new=hostile_text, confirm=hostile_text)
@fuzz_settings(PASSWORD_EXAMPLES)
def test_profile_password_form(
    fuzz_server: FuzzServer, browser: httpx.Client, current: str, new: str, confirm: str
) -> None:
    fields = {"current_password": current, "new_password": new, "confirm": confirm}
    response = browser.post("/profile/password", content=form_bytes(fields), headers=FORM)
    check(response, fuzz_server)


@given(text=hostile_value)
@fuzz_settings(EXAMPLES)
def test_markdown_api(fuzz_server: FuzzServer, browser: httpx.Client, text: object) -> None:
    response = browser.post("/web/api/markdown", content=json_bytes({"text": text}), headers=JSON)
    check(response, fuzz_server)


@given(
    model=st.one_of(st.just("gpt-4o-mini"), hostile_text),
    role=st.one_of(st.just("user"), hostile_text),
    content=hostile_value,
    conversation_id=st.one_of(st.none(), hostile_value),
    replace_from=st.one_of(st.sampled_from(HOSTILE_NUMBERS), hostile_text),
)
@fuzz_settings(EXAMPLES)
def test_chat_replacing_api(
    fuzz_server: FuzzServer,
    browser: httpx.Client,
    model: str,
    role: str,
    content: object,
    conversation_id: object,
    replace_from: str,
) -> None:
    body = {
        "model": model,
        "messages": [{"role": role, "content": content}],
        "conversation_id": conversation_id,
    }
    response = browser.post(
        f"/web/api/chat/completions?replace_from={path_part(replace_from)}",
        content=json_bytes(body),
        headers=JSON,
    )
    check(response, fuzz_server)


@given(value=st.one_of(st.sampled_from(HOSTILE_NUMBERS), hostile_text))
@fuzz_settings(PAGE_EXAMPLES)
def test_pages_with_hostile_paths_and_queries(
    fuzz_server: FuzzServer, browser: httpx.Client, value: str
) -> None:
    part = path_part(value)
    for url in (
        f"/web/api/conversations/{part}/messages",
        f"/language-models/{part}",
        f"/language-models/openai/gpt-4o-mini?c={part}",
        f"/training/jobs/{part}",
        f"/login?next={part}",
        f"/usage?period={part}",
        f"/chat?model={part}",
        f"/?{part}={part}",
    ):
        check(browser.get(url, follow_redirects=False), fuzz_server)


def test_a_missing_training_job_is_a_404_page(
    fuzz_server: FuzzServer, browser: httpx.Client
) -> None:
    for ref in ("999999", "0", "-1", "abc", "9" * 400, "%00"):
        response = browser.get(f"/training/jobs/{ref}")
        assert response.status_code in (400, 404), response.text
        assert_reveals_nothing(response.text, fuzz_server.data_dir)
