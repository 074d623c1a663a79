"""The chat page's JSON endpoints: rendered history, Markdown, and replacing a stored turn
(Regenerate, edit and resend) only once the new answer is complete."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from modelyard.db.engine import Database
from tests.helpers import login, make_user
from tests.polling import poll
from tests.usage.live import LONG_REPLY, post_then_leave
from tests.web.conftest import USER_KEY
from tests.web.live import LiveServer, SlowChatOpenAI

HEADER = "x-modelyard-conversation-id"


@pytest.fixture
async def csrf(
    client: httpx.AsyncClient, database: Database, openai_upstream: SlowChatOpenAI
) -> str:
    """A signed-in user with an OpenAI key (answered by the fake); their CSRF token."""
    await make_user(database, "chat@example.com")
    token = await login(client, "chat@example.com")
    response = await client.patch(
        "/v2/users/me/api-key",
        json={"provider": "openai", "api_key": USER_KEY},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200
    return token


async def chat(
    client: httpx.AsyncClient,
    csrf: str,
    messages: list[dict[str, str]],
    *,
    conversation_id: int | None = None,
    replace_from: int | None = None,
    stream: bool = False,
) -> httpx.Response:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": messages, "stream": stream}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    url = "/v2/llm/chat/completions"
    if replace_from is not None:
        url = f"/web/api/chat/completions?replace_from={replace_from}"
    return await client.post(url, json=body, headers={"X-CSRF-Token": csrf})


async def rendered(client: httpx.AsyncClient, conversation_id: int) -> dict[str, Any]:
    response = await client.get(f"/web/api/conversations/{conversation_id}/messages")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


async def two_turns(client: httpx.AsyncClient, csrf: str) -> tuple[int, list[dict[str, Any]]]:
    first = await chat(client, csrf, [user("first")])
    conversation = int(first.headers[HEADER])
    second = await chat(
        client,
        csrf,
        [user("first"), assistant("Echo: first"), user("second")],
        conversation_id=conversation,
    )
    assert second.status_code == 200
    return conversation, (await rendered(client, conversation))["items"]


async def test_history_comes_rendered_with_tokens_and_cost(
    client: httpx.AsyncClient, csrf: str
) -> None:
    response = await chat(client, csrf, [user("**bold** <b>raw</b>\n\n```python\nx = 1\n```")])
    assert response.status_code == 200, response.text
    history = await rendered(client, int(response.headers[HEADER]))
    assert history["title"] == "**bold** <b>raw</b>"
    question, answer = history["items"]
    assert question["role"] == "user" and question["input_tokens"] > 0
    assert answer["html"].startswith("<p>Echo: <strong>bold</strong> &lt;b&gt;raw&lt;/b&gt;</p>")
    assert '<pre class="hl" data-lang="python"><code><span class="n">x</span>' in answer["html"]
    assert answer["output_tokens"] > 0
    assert answer["cost_usd"] > 0 and answer["cost"].startswith("$0.00000")
    assert answer["model"] == "gpt-4o-mini"


async def test_history_is_private(client: httpx.AsyncClient, database: Database, csrf: str) -> None:
    response = await chat(client, csrf, [user("mine")])
    conversation = int(response.headers[HEADER])
    await make_user(database, "other@example.com")
    other = await login(client, "other@example.com")
    refused = await client.get(f"/web/api/conversations/{conversation}/messages")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "conversation_not_found"
    replaced = await chat(client, other, [user("x")], conversation_id=conversation, replace_from=1)
    assert replaced.status_code == 404
    client.cookies.clear()
    assert (await client.get(f"/web/api/conversations/{conversation}/messages")).status_code == 401


async def test_regenerate_replaces_the_last_turn(
    client: httpx.AsyncClient, csrf: str, openai_upstream: SlowChatOpenAI
) -> None:
    conversation, items = await two_turns(client, csrf)
    second_question = items[2]
    response = await chat(
        client,
        csrf,
        [user("first"), assistant("Echo: first"), user("second")],
        conversation_id=conversation,
        replace_from=second_question["id"],
    )
    assert response.status_code == 200, response.text
    assert response.headers[HEADER] == str(conversation)
    after = (await rendered(client, conversation))["items"]
    assert [(m["role"], m["content"]) for m in after] == [
        ("user", "first"),
        ("assistant", "Echo: first"),
        ("user", "second"),
        ("assistant", "Echo: second"),
    ]
    assert [m["id"] for m in after[:2]] == [m["id"] for m in items[:2]]
    body = json.loads(openai_upstream.last_request.body)
    assert "replace_from" not in body and "conversation_id" not in body


async def test_edit_replaces_everything_from_the_edited_message(
    client: httpx.AsyncClient, csrf: str
) -> None:
    conversation, items = await two_turns(client, csrf)
    response = await chat(
        client,
        csrf,
        [user("first, edited")],
        conversation_id=conversation,
        replace_from=items[0]["id"],
        stream=True,
    )
    assert response.status_code == 200
    assert "data: [DONE]" in response.text
    after = (await rendered(client, conversation))["items"]
    assert [(m["role"], m["content"]) for m in after] == [
        ("user", "first, edited"),
        ("assistant", "Echo: first, edited"),
    ]


async def test_a_failed_or_refused_replacement_changes_nothing(
    client: httpx.AsyncClient, csrf: str, openai_upstream: SlowChatOpenAI
) -> None:
    conversation, items = await two_turns(client, csrf)
    calls = len(openai_upstream.requests)

    answer_id = items[1]["id"]
    not_a_question = await chat(
        client, csrf, [user("x")], conversation_id=conversation, replace_from=answer_id
    )
    assert not_a_question.status_code == 404
    error = not_a_question.json()["error"]
    assert error["param"] == "replace_from" and error["code"] == "message_not_found"
    assert f"no user message {answer_id}" in error["message"]

    unknown = await chat(client, csrf, [user("x")], conversation_id=conversation, replace_from=999)
    assert unknown.status_code == 404

    without_conversation = await chat(client, csrf, [user("x")], replace_from=items[0]["id"])
    assert without_conversation.status_code == 400
    assert without_conversation.json()["error"]["param"] == "conversation_id"

    zero = await chat(client, csrf, [user("x")], conversation_id=conversation, replace_from=0)
    assert zero.status_code == 422
    assert len(openai_upstream.requests) == calls  # none of these called the upstream

    openai_upstream.fail_with(400)
    failed = await chat(
        client, csrf, [user("again")], conversation_id=conversation, replace_from=items[0]["id"]
    )
    assert failed.status_code == 400
    openai_upstream.fail_with(None)
    openai_upstream.drop_after = 1
    cut = await chat(
        client,
        csrf,
        [user("again")],
        conversation_id=conversation,
        replace_from=items[0]["id"],
        stream=True,
    )
    assert cut.status_code == 200 and "[DONE]" not in cut.text
    openai_upstream.drop_after = None
    assert (await rendered(client, conversation))["items"] == items


async def test_markdown_endpoint(client: httpx.AsyncClient, csrf: str) -> None:
    response = await client.post(
        "/web/api/markdown",
        json={"text": "[x](javascript:alert(1)) <i>hi</i>"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.json() == {"html": "<p>[x](javascript:alert(1)) &lt;i&gt;hi&lt;/i&gt;</p>\n"}
    too_long = await client.post(
        "/web/api/markdown", json={"text": "x" * 200_001}, headers={"X-CSRF-Token": csrf}
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["param"] == "text"


async def test_a_stopped_answer_is_kept_marked_stopped_on_both_chat_routes(
    live: LiveServer, database: Database, openai_upstream: SlowChatOpenAI
) -> None:
    """The web chat's Stop (the browser aborts the fetch, the connection closes): the
    question and what had arrived stay, on a first turn and on a Regenerate."""
    await make_user(database, "stop@example.com")
    openai_upstream.scripted_reply = LONG_REPLY
    openai_upstream.stream_chunks, openai_upstream.chunk_delay = 60, 0.05
    async with httpx.AsyncClient(base_url=live.url) as http:
        token = await login(http, "stop@example.com")
        headers = {"X-CSRF-Token": token}
        key = await http.patch(
            "/v2/users/me/api-key",
            json={"provider": "openai", "api_key": USER_KEY},
            headers=headers,
        )
        assert key.status_code == 200
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [user("q1")], "stream": True}
        sent, read = await post_then_leave(http, "/v2/llm/chat/completions", body, headers, 3)
        conversation = int(sent[HEADER])
        first = await wait_for_rendered(http, conversation, 2)
        assert (first[0]["role"], first[0]["content"], first[0]["status"]) == ("user", "q1", None)
        stopped = first[1]
        assert stopped["status"] == "stopped" and stopped["output_tokens"] > 0
        assert stopped["content"].startswith(read) and LONG_REPLY.startswith(stopped["content"])
        assert stopped["html"].startswith("<p>word0") and stopped["cost_usd"] > 0

        # Regenerate it, and stop again: the stopped turn is replaced by the new one.
        body = {**body, "conversation_id": conversation, "messages": [user("q1 again")]}
        url = f"/web/api/chat/completions?replace_from={first[0]['id']}"
        await post_then_leave(http, url, body, headers, 2)
        again = await wait_for_rendered(
            http, conversation, 2, until=lambda items: items[0]["content"] == "q1 again"
        )
    assert [(m["role"], m["status"]) for m in again] == [("user", None), ("assistant", "stopped")]
    assert again[0]["content"] == "q1 again" and again[1]["output_tokens"] > 0


async def wait_for_rendered(
    http: httpx.AsyncClient,
    conversation_id: int,
    count: int,
    until: Callable[[list[dict[str, Any]]], bool] = lambda items: True,
) -> list[dict[str, Any]]:
    """The rendered history once it has ``count`` messages and ``until`` holds."""

    async def rendered() -> list[dict[str, Any]]:
        response = await http.get(f"/web/api/conversations/{conversation_id}/messages")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    return await poll(rendered, lambda items: len(items) == count and until(items), timeout=15)
