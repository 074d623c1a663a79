"""Conversation settings and custom instructions: the system prompt, temperature and
length of a conversation reach the upstream with every turn (never stored as a message),
the user's custom instructions stand in where a conversation has no prompt, a request's
own system message wins, and another user's conversation is a 404."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from modelyard.db.engine import Database
from tests.conversations.conftest import stored_messages
from tests.fakes.openai_chat import ChatOpenAI
from tests.helpers import bearer


async def turn(sdk: openai.AsyncOpenAI, text: str, conversation_id: int | None = None) -> int:
    extra = {"conversation_id": conversation_id} if conversation_id else None
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], extra_body=extra
    )
    return int(raw.headers["x-modelyard-conversation-id"])


def sent(upstream: ChatOpenAI) -> dict[str, Any]:
    body: dict[str, Any] = upstream.last_request.json()
    return body


async def patch(
    http: httpx.AsyncClient, token: str, conversation_id: int, **values: object
) -> httpx.Response:
    return await http.patch(
        f"/v2/conversations/{conversation_id}", json=values, headers=bearer(token)
    )


async def test_a_conversations_settings_reach_every_turn(
    app_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ChatOpenAI,
    database: Database,
) -> None:
    conversation_id = await turn(app_sdk, "hello")
    assert sent(upstream)["messages"][0]["role"] == "user"
    changed = await patch(
        asgi_http,
        user_token,
        conversation_id,
        system_prompt="  Answer like a pirate.  ",
        temperature=0.3,
        max_tokens=77,
    )
    assert changed.status_code == 200, changed.text
    shown = changed.json()
    assert (shown["system_prompt"], shown["temperature"], shown["max_tokens"]) == (
        "Answer like a pirate.",
        0.3,
        77,
    )
    await turn(app_sdk, "and now?", conversation_id)
    body = sent(upstream)
    assert body["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    assert body["temperature"] == 0.3 and body["max_tokens"] == 77
    # A setting, not a message: the history holds the four turns' messages only.
    roles = [message.role for message in await stored_messages(database, conversation_id)]
    assert roles == ["user", "assistant", "user", "assistant"]

    # null clears a setting; the others stay.
    cleared = await patch(asgi_http, user_token, conversation_id, temperature=None)
    assert cleared.json()["temperature"] is None and cleared.json()["max_tokens"] == 77
    await turn(app_sdk, "third", conversation_id)
    assert "temperature" not in sent(upstream) or sent(upstream)["temperature"] is None
    assert sent(upstream)["max_tokens"] == 77


async def test_custom_instructions_stand_in_for_a_missing_prompt(
    app_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    upstream: ChatOpenAI,
) -> None:
    saved = await asgi_http.put(
        "/v2/users/me/custom-instructions",
        json={"custom_instructions": "Be brief."},
        headers=bearer(user_token),
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["custom_instructions"] == "Be brief."
    profile = await asgi_http.get("/v2/users/me", headers=bearer(user_token))
    assert profile.json()["custom_instructions"] == "Be brief."

    conversation_id = await turn(app_sdk, "a new conversation")
    assert sent(upstream)["messages"][0] == {"role": "system", "content": "Be brief."}
    # The conversation's own prompt wins; cleared, the custom instructions are back.
    await patch(asgi_http, user_token, conversation_id, system_prompt="Be verbose.")
    await turn(app_sdk, "again", conversation_id)
    assert sent(upstream)["messages"][0] == {"role": "system", "content": "Be verbose."}
    await patch(asgi_http, user_token, conversation_id, system_prompt="")
    await turn(app_sdk, "once more", conversation_id)
    assert sent(upstream)["messages"][0] == {"role": "system", "content": "Be brief."}

    # A request that brings its own system message keeps it, and gets nothing added.
    await app_sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Mine."},
            {"role": "user", "content": "hi"},
        ],
        extra_body={"conversation_id": conversation_id},
    )
    systems = [m for m in sent(upstream)["messages"] if m["role"] == "system"]
    assert systems == [{"role": "system", "content": "Mine."}]

    cleared = await asgi_http.put(
        "/v2/users/me/custom-instructions",
        json={"custom_instructions": "   "},
        headers=bearer(user_token),
    )
    assert cleared.json()["custom_instructions"] is None
    await turn(app_sdk, "plain")
    assert sent(upstream)["messages"][0]["role"] == "user"


async def test_bad_settings_and_another_users_conversation(
    app_sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    user_token: str,
    other_token: str,
) -> None:
    conversation_id = await turn(app_sdk, "mine")
    for values in ({"temperature": 2.5}, {"max_tokens": 0}, {"system_prompt": "x" * 20_001}, {}):
        refused = await patch(asgi_http, user_token, conversation_id, **values)
        assert refused.status_code in (400, 422), (values, refused.text)
        assert "error" in refused.json()
    detail = await asgi_http.get(f"/v2/conversations/{conversation_id}", headers=bearer(user_token))
    assert detail.json()["temperature"] is None and detail.json()["system_prompt"] is None
    theirs = await patch(asgi_http, other_token, conversation_id, system_prompt="hijack")
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "conversation_not_found"
    detail = await asgi_http.get(f"/v2/conversations/{conversation_id}", headers=bearer(user_token))
    assert detail.json()["system_prompt"] is None
    too_long = await asgi_http.put(
        "/v2/users/me/custom-instructions",
        json={"custom_instructions": "y" * 20_001},
        headers=bearer(user_token),
    )
    assert too_long.status_code in (400, 422)
