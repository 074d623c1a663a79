"""A client that leaves a streamed chat turn midway (the web chat's Stop does that) leaves
the question and what had arrived of the answer stored, the answer marked ``stopped`` with
its tokens and cost, never an empty conversation. The app is served on 127.0.0.1: an
in-process ASGI transport never tells the app that its client left."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import ConversationMessage
from tests.conversations.conftest import conversation_count, price, stored_messages
from tests.fakes.fixtures import OPENAI_KEY
from tests.gateway.conftest import add_provider
from tests.helpers import bearer
from tests.polling import poll
from tests.usage.live import (
    LONG_REPLY,
    read_then_leave,
    serve,
    slow_openai,
    wait_for_records,
)
from tests.web.live import LiveServer, SlowChatOpenAI

HEADER = "x-modelyard-conversation-id"
QUESTION = "tell me a long story"


@pytest.fixture
def upstream() -> Iterator[SlowChatOpenAI]:
    with slow_openai() as fake:
        yield fake


@pytest.fixture
async def live(
    settings: Settings, database: Database, upstream: SlowChatOpenAI
) -> AsyncIterator[LiveServer]:
    await add_provider(database, "slow", upstream.base_url, OPENAI_KEY, default=True)
    with serve(settings) as server:
        yield server


async def wait_for_messages(
    database: Database, conversation_id: int, count: int
) -> list[ConversationMessage]:
    return await poll(
        lambda: stored_messages(database, conversation_id),
        lambda messages: len(messages) >= count,
        timeout=15,
    )


def app_sdk(live: LiveServer, token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{live.url}/v2/llm", api_key=token, max_retries=0)


async def history(live: LiveServer, token: str, conversation_id: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=live.url) as http:
        response = await http.get(
            f"/v2/conversations/{conversation_id}/messages", headers=bearer(token)
        )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_stopped_first_turn_keeps_the_question_and_the_partial_answer(
    live: LiveServer, database: Database, user_token: str
) -> None:
    raw = await app_sdk(live, user_token).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    conversation_id = int(raw.headers[HEADER])
    chunks = await read_then_leave(raw.parse(), 4)
    read = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert read.startswith("word0")

    question, answer = await wait_for_messages(database, conversation_id, 2)
    assert (question.role, question.content, question.status) == ("user", QUESTION, None)
    assert question.input_tokens > 0
    assert answer.role == "assistant" and answer.status == "stopped"
    # What had arrived when the client left: at least what it read, not the whole answer.
    assert answer.content.startswith(read) and LONG_REPLY.startswith(answer.content)
    assert answer.content != LONG_REPLY
    assert answer.output_tokens > 0 and answer.model == "gpt-4o-mini"
    assert answer.cost_usd == price(question.input_tokens, answer.output_tokens) > 0
    [record] = await wait_for_records(database, 1)
    assert (record.status, record.conversation_id) == (499, conversation_id)
    assert (record.input_tokens, record.output_tokens) == (
        question.input_tokens,
        answer.output_tokens,
    )

    # The history API shows the stopped answer as such.
    items = await history(live, user_token, conversation_id)
    assert [(m["role"], m["status"]) for m in items] == [("user", None), ("assistant", "stopped")]
    assert items[1]["content"] == answer.content


async def test_a_stop_before_anything_arrived_keeps_the_question(
    live: LiveServer, database: Database, user_token: str, upstream: SlowChatOpenAI
) -> None:
    upstream.delay = 1.0  # the answer starts after the client gave up
    async with httpx.AsyncClient(base_url=live.url, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                "/v2/llm/chat/completions",
                json={
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": QUESTION}],
                    "stream": True,
                },
                headers=bearer(user_token),
            )
    [record] = await wait_for_records(database, 1)
    assert record.status == 499 and record.conversation_id is not None
    question, answer = await wait_for_messages(database, record.conversation_id, 2)
    assert (question.content, answer.content, answer.status) == (QUESTION, "", "stopped")
    assert answer.output_tokens == 0 and question.input_tokens == record.input_tokens > 0
    assert answer.cost_usd == record.cost_usd > 0  # the prompt was paid for
    assert await conversation_count(database) == 1


async def test_a_stopped_later_turn_is_added_to_the_conversation(
    live: LiveServer, database: Database, user_token: str, upstream: SlowChatOpenAI
) -> None:
    sdk = app_sdk(live, user_token)
    upstream.chunk_delay = 0
    first = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "first"}]
    )
    conversation_id = int(first.headers[HEADER])
    upstream.chunk_delay = 0.05
    second = await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": LONG_REPLY},
            {"role": "user", "content": "second"},
        ],
        stream=True,
        extra_body={"conversation_id": conversation_id},
    )
    await read_then_leave(second, 3)
    messages = await wait_for_messages(database, conversation_id, 4)
    assert [(m.role, m.status) for m in messages] == [
        ("user", None),
        ("assistant", None),
        ("user", None),
        ("assistant", "stopped"),
    ]
    assert messages[1].content == LONG_REPLY and messages[2].content == "second"
    assert messages[3].content and LONG_REPLY.startswith(messages[3].content)
    assert messages[3].cost_usd > Decimal(0)
