"""The chat page's JSON endpoints: rendered history, Markdown, new versions of a stored
turn (Regenerate, edit and resend) only once the new answer is complete, switching between
versions, and continuing a stopped answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from modelyard.db.engine import Database
from modelyard.db.models import ConversationMessage
from tests.helpers import login, make_user
from tests.polling import poll
from tests.usage.live import LONG_REPLY, post_then_leave
from tests.web.conftest import USER_KEY
from tests.web.live import LiveServer, SlowChatOpenAI

HEADER = "x-modelyard-conversation-id"


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


async def show(client: httpx.AsyncClient, csrf: str, conversation: int, message_id: int) -> Any:
    return await client.put(
        f"/web/api/conversations/{conversation}/shown",
        json={"message_id": message_id},
        headers={"X-CSRF-Token": csrf},
    )


async def test_regenerate_keeps_the_earlier_answer_as_a_version(
    client: httpx.AsyncClient, csrf: str, openai_upstream: SlowChatOpenAI
) -> None:
    conversation, items = await two_turns(client, csrf)
    assert [m["version_count"] for m in items] == [1, 1, 1, 1]
    openai_upstream.scripted_reply = "A second take"
    again = await chat(
        client,
        csrf,
        [user("first"), assistant("Echo: first"), user("second")],
        conversation_id=conversation,
        replace_from=items[2]["id"],
    )
    assert again.status_code == 200, again.text
    after = (await rendered(client, conversation))["items"]
    assert [m["id"] for m in after[:3]] == [m["id"] for m in items[:3]]  # the same question
    newest = after[3]
    assert newest["content"] == "A second take"
    assert (newest["version"], newest["version_count"]) == (2, 2)
    assert newest["version_ids"] == [items[3]["id"], newest["id"]]

    earlier = await show(client, csrf, conversation, items[3]["id"])
    assert earlier.status_code == 200, earlier.text
    shown = earlier.json()["items"]
    assert shown[3]["content"] == "Echo: second" and shown[3]["version"] == 1
    assert (await rendered(client, conversation))["items"] == shown  # remembered
    detail = (await client.get(f"/v2/conversations/{conversation}")).json()
    assert detail["message_count"] == 5  # every version was paid for

    # The next turn follows the version shown.
    openai_upstream.scripted_reply = None
    await chat(
        client,
        csrf,
        [
            *(user("first"), assistant("Echo: first")),
            *(user("second"), assistant("Echo: second")),
            user("third"),
        ],
        conversation_id=conversation,
    )
    after = (await rendered(client, conversation))["items"]
    assert [m["content"] for m in after] == [
        "first",
        "Echo: first",
        "second",
        "Echo: second",
        "third",
        "Echo: third",
    ]


async def test_an_edit_is_a_new_version_of_the_question(
    client: httpx.AsyncClient, csrf: str
) -> None:
    conversation, items = await two_turns(client, csrf)
    await chat(
        client,
        csrf,
        [user("first, edited")],
        conversation_id=conversation,
        replace_from=items[0]["id"],
    )
    edited = (await rendered(client, conversation))["items"]
    assert [m["content"] for m in edited] == ["first, edited", "Echo: first, edited"]
    assert (edited[0]["version"], edited[0]["version_count"]) == (2, 2)
    assert edited[0]["version_ids"] == [items[0]["id"], edited[0]["id"]]
    # The first version comes back with everything that followed it.
    original = (await show(client, csrf, conversation, items[0]["id"])).json()["items"]
    assert [m["id"] for m in original] == [m["id"] for m in items]
    assert original[0]["version"] == 1


async def test_showing_a_version_is_checked(
    client: httpx.AsyncClient, csrf: str, database: Database
) -> None:
    conversation, items = await two_turns(client, csrf)
    unknown = await show(client, csrf, conversation, 999_999)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "message_id"
    other_conversation = int((await chat(client, csrf, [user("elsewhere")])).headers[HEADER])
    foreign = await show(client, csrf, other_conversation, items[1]["id"])
    assert foreign.status_code == 404  # a message of another conversation
    bad = await client.put(
        f"/web/api/conversations/{conversation}/shown",
        json={"message_id": "x"},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == 422
    await make_user(database, "other@example.com")
    client.cookies.clear()
    other = await login(client, "other@example.com")
    assert (await show(client, other, conversation, items[0]["id"])).status_code == 404


async def test_continue_appends_to_a_stopped_answer(
    client: httpx.AsyncClient, csrf: str, database: Database, openai_upstream: SlowChatOpenAI
) -> None:
    first = await chat(client, csrf, [user("tell me")])
    conversation = int(first.headers[HEADER])
    question, answer = (await rendered(client, conversation))["items"]
    async with database.sessions() as session:
        stored = await session.get(ConversationMessage, answer["id"])
        assert stored is not None
        stored.content, stored.status = "Echo: te", "stopped"
        await session.commit()
    history = [user("tell me"), assistant("Echo: te")]
    openai_upstream.scripted_reply = "ll me"
    url = f"/web/api/chat/completions?continue_from={answer['id']}"
    body = {"model": "gpt-4o-mini", "messages": history, "conversation_id": conversation}
    response = await client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    sent = json.loads(openai_upstream.last_request.body)["messages"]
    assert sent[:2] == history and sent[-1]["role"] == "user"
    assert "Continue it exactly where it stopped" in sent[-1]["content"]
    after = (await rendered(client, conversation))["items"]
    assert [m["id"] for m in after] == [question["id"], answer["id"]]  # no new message
    assert after[1]["content"] == "Echo: tell me" and after[1]["status"] is None
    assert after[1]["output_tokens"] > answer["output_tokens"]
    assert after[1]["input_tokens"] > 0

    # Only a stopped answer can be continued; and one parameter at a time.
    again = await client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 404
    assert again.json()["error"]["param"] == "continue_from"
    both = await client.post(
        f"{url}&replace_from={question['id']}", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert both.status_code == 400
    neither = await client.post(
        "/web/api/chat/completions", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert neither.status_code == 400
