"""Stop in the browser, at a laptop's and a phone's size: on a first turn (before anything
arrived, and midway) and on a later turn, the question and what had arrived stay, marked
stopped, also after a reload; never an empty conversation in the sidebar."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.async_api import Page, expect

from tests.polling import poll
from tests.web.flows import ask, chat_prompt, register_with_key
from tests.web.live import SlowChatOpenAI

CHAT = "/language-models/gpt-4o-mini"
VIEWPORTS = [{"width": 1366, "height": 900}, {"width": 390, "height": 844}]


async def send(page: Page, text: str) -> None:
    prompt = await chat_prompt(page)
    await prompt.fill(text)
    await prompt.press("Enter")


async def stored(page: Page) -> list[tuple[str, str, str | None]]:
    match = re.search(r"[?&]c=(\d+)", page.url)
    assert match, f"no conversation in {page.url}"
    response = await page.request.get(f"/v2/conversations/{match.group(1)}/messages")
    assert response.ok
    return [(m["role"], m["content"], m["status"]) for m in (await response.json())["items"]]


async def sidebar_titles(page: Page) -> list[str]:
    response = await page.request.get("/v2/conversations/")
    assert response.ok
    return [c["title"] for c in (await response.json())["items"]]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_stop_before_the_answer_began_keeps_the_question(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: dict[str, int]
) -> None:
    await page.set_viewport_size(viewport)
    await register_with_key(page)
    await page.goto(CHAT)
    # Nothing arrives before Stop; then the answer streams slowly (the server notices the
    # closed connection once it starts to answer, and keeps what it had relayed).
    openai_upstream.delay = 2.0
    openai_upstream.chunk_delay, openai_upstream.stream_chunks = 0.5, 8
    await send(page, "a question stopped at once")
    await page.wait_for_timeout(500)
    await page.get_by_role("button", name="Stop").click()
    question = page.locator(".message.user .content")
    await expect(question).to_have_text("a question stopped at once")
    await expect(page.locator(".message.assistant .stopped-note")).to_be_visible()
    # The page knows the conversation the server kept, and so does the sidebar.
    await expect(page).to_have_url(re.compile(r"\?c=\d+$"), timeout=10_000)
    assert [(role, status) for role, _, status in await stored(page)] == [
        ("user", None),
        ("assistant", "stopped"),
    ]
    await expect(page.locator("#conversation-list .conversation.active")).to_have_count(1)
    assert await sidebar_titles(page) == ["a question stopped at once"]
    await page.reload()
    await expect(question).to_have_text("a question stopped at once")
    await expect(page.locator(".message.assistant .stopped-note")).to_be_visible()
    [record] = await poll(lambda: usage_rows(page), lambda rows: len(rows) > 0, timeout=10)
    assert (record["status"], record["error_code"]) == ("499", "client_closed_request")
    assert int(record["input_tokens"]) > 0

    # The next question continues that conversation.
    openai_upstream.delay, openai_upstream.chunk_delay = 0, 0
    await ask(page, "and now?")
    assert [content for _, content, _ in await stored(page)][2:] == [
        "and now?",
        "Echo: and now?",
    ]
    assert len(await sidebar_titles(page)) == 1


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_stop_on_a_later_turn_survives_a_reload(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: dict[str, int]
) -> None:
    await page.set_viewport_size(viewport)
    await register_with_key(page)
    await page.goto(CHAT)
    await ask(page, "first question")
    openai_upstream.chunk_delay, openai_upstream.stream_chunks = 0.4, 8
    await send(page, "second one two three four five six seven")
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".content.typing")).to_contain_text("Echo:")
    await page.get_by_role("button", name="Stop").click()
    await expect(answer.locator(".stopped-note")).to_be_visible()
    await expect(answer.locator(".meta")).to_contain_text("output tokens")
    await page.reload()
    await expect(page.locator(".message")).to_have_count(4)
    await expect(page.locator(".message.user .content").last).to_have_text(
        "second one two three four five six seven"
    )
    await expect(page.locator(".message.assistant").last.locator(".stopped-note")).to_be_visible()
    kept = await stored(page)
    assert [(role, status) for role, _, status in kept] == [
        ("user", None),
        ("assistant", None),
        ("user", None),
        ("assistant", "stopped"),
    ]
    assert kept[3][1].startswith("Echo: second")

    # Its usage: a 499 client_closed_request, charged for the prompt and what was relayed.
    records = await poll(
        lambda: usage_rows(page),
        lambda rows: any(row["status"] == "499" for row in rows),
        timeout=10,
    )
    stopped = [row for row in records if row["status"] == "499"]
    assert len(stopped) == 1 and len(records) == 2
    assert stopped[0]["error_code"] == "client_closed_request"
    assert int(stopped[0]["input_tokens"]) > 0 and int(stopped[0]["output_tokens"]) > 0
    # The usage report counts it as a request, not as an error.
    report = await page.request.get("/v2/usage")
    assert report.ok
    totals = (await report.json())["totals"]
    assert (totals["requests"], totals["errors"]) == (2, 0)
    assert totals["output_tokens"] > int(records[0]["output_tokens"])


async def usage_rows(page: Page) -> list[dict[str, str]]:
    response = await page.request.get("/v2/usage/export.csv")
    assert response.ok
    return list(csv.DictReader(io.StringIO(await response.text())))


async def test_stop_on_a_later_turn_before_the_answer_began_survives_a_reload(
    page: Page, openai_upstream: SlowChatOpenAI
) -> None:
    await page.set_viewport_size(VIEWPORTS[1])
    await register_with_key(page)
    await page.goto(CHAT)
    await ask(page, "first question")
    openai_upstream.delay = 2.0
    openai_upstream.chunk_delay, openai_upstream.stream_chunks = 0.5, 8
    await send(page, "a later question stopped at once")
    await page.wait_for_timeout(500)
    await page.get_by_role("button", name="Stop").click()
    await expect(page.locator(".message.assistant").last.locator(".stopped-note")).to_be_visible(
        timeout=10_000
    )
    await page.reload()
    await expect(page.locator(".message")).to_have_count(4)
    await expect(page.locator(".message.user .content").last).to_have_text(
        "a later question stopped at once"
    )
    assert [(role, status) for role, _, status in await stored(page)][2:] == [
        ("user", None),
        ("assistant", "stopped"),
    ]
