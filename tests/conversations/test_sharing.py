"""Read-only share links: only the owner shares or revokes, anyone with the link reads the
conversation (signed in or not) without its owner, tokens or costs, and a revoked or
unknown link is a 404 page."""

from __future__ import annotations

import re

import httpx
import openai

from modelyard.db.engine import Database
from modelyard.db.models import Conversation
from tests.helpers import bearer

SECRET_WORD = "zanzibar-canary"


async def first_turn(sdk: openai.AsyncOpenAI, text: str) -> int:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    return int(raw.headers["x-modelyard-conversation-id"])


async def share(http: httpx.AsyncClient, token: str, conversation_id: int) -> httpx.Response:
    return await http.post(f"/v2/conversations/{conversation_id}/share", headers=bearer(token))


async def test_share_read_revoke_and_share_again(
    app_sdk: openai.AsyncOpenAI, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    question = f"Markdown **bold** and <script>alert(1)</script> {SECRET_WORD}"
    conversation_id = await first_turn(app_sdk, question)
    created = await share(asgi_http, user_token, conversation_id)
    assert created.status_code == 200, created.text
    link = created.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", link["share_id"])
    assert link == {
        "conversation_id": conversation_id,
        "share_id": link["share_id"],
        "path": f"/share/{link['share_id']}",
    }
    # Sharing again is the same link; the conversation says it is shared.
    assert (await share(asgi_http, user_token, conversation_id)).json() == link
    detail = await asgi_http.get(f"/v2/conversations/{conversation_id}", headers=bearer(user_token))
    assert detail.json()["share_id"] == link["share_id"]

    # Anyone with the link reads it, without signing in.
    page = await asgi_http.get(link["path"])
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "noindex" in page.headers["x-robots-tag"]
    assert SECRET_WORD in page.text and "gpt-4o-mini" in page.text
    # The question is shown as typed, escaped; the answer's Markdown is rendered safely.
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "<strong>bold</strong>" in page.text
    # Never the owner, tokens or costs.
    assert "sdk@example.com" not in page.text and "sdk@" not in page.text
    assert "tokens" not in page.text.lower() and "$" not in page.text

    # Revoked: the link is a 404 page, and sharing again makes a new link.
    revoked = await asgi_http.delete(
        f"/v2/conversations/{conversation_id}/share", headers=bearer(user_token)
    )
    assert revoked.status_code == 204
    gone = await asgi_http.get(link["path"])
    assert gone.status_code == 404 and SECRET_WORD not in gone.text
    assert "stopped sharing" in gone.text or "does not exist" in gone.text
    again = await share(asgi_http, user_token, conversation_id)
    assert again.json()["share_id"] != link["share_id"]
    assert (await asgi_http.get(link["path"])).status_code == 404
    assert (await asgi_http.get(again.json()["path"])).status_code == 200


async def test_only_the_owner_shares_or_revokes(
    app_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    other_token: str,
    database: Database,
) -> None:
    conversation_id = await first_turn(app_sdk, f"private {SECRET_WORD}")
    theirs = await share(asgi_http, other_token, conversation_id)
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "conversation_not_found"
    async with database.sessions() as session:
        row = await session.get(Conversation, conversation_id)
        assert row is not None and row.share_id is None

    link = (await share(asgi_http, user_token, conversation_id)).json()
    revoke = await asgi_http.delete(
        f"/v2/conversations/{conversation_id}/share", headers=bearer(other_token)
    )
    assert revoke.status_code == 404
    assert (await asgi_http.get(link["path"])).status_code == 200
    assert (await share(asgi_http, user_token, 999999)).status_code == 404


async def test_unknown_and_malformed_links_are_404_pages(asgi_http: httpx.AsyncClient) -> None:
    for share_id in ("A" * 22, "short", "a.b;c", "x" * 300):
        page = await asgi_http.get(f"/share/{share_id}")
        assert page.status_code == 404, share_id
        assert "text/html" in page.headers["content-type"]
