"""The chat page in Chromium: Stop, Regenerate, edit and resend, Markdown with highlighted
code and no way to inject HTML, the conversations sidebar, and errors shown inline."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.async_api import Dialog, Page, expect

from tests.web.conftest import Console, screenshot
from tests.web.flows import ask, chat_prompt, register, register_with_key
from tests.web.live import SlowChatOpenAI

CHAT = "/language-models/gpt-4o-mini"


async def stored_messages(page: Page) -> list[dict[str, Any]]:
    """The current conversation's stored messages, read through the API."""
    match = re.search(r"[?&]c=(\d+)", page.url)
    assert match, f"no conversation in {page.url}"
    response = await page.request.get(f"/v2/conversations/{match.group(1)}/messages")
    assert response.ok
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


def upstream_messages(upstream: SlowChatOpenAI) -> list[dict[str, Any]]:
    body = json.loads(upstream.last_request.body)
    return [{"role": m["role"], "content": m["content"]} for m in body["messages"]]


async def test_stop_regenerate_and_edit(page: Page, openai_upstream: SlowChatOpenAI) -> None:
    await register_with_key(page)
    await page.goto(CHAT)
    openai_upstream.chunk_delay, openai_upstream.stream_chunks = 0.4, 8
    prompt = await chat_prompt(page)
    await prompt.fill("one two three four five six seven eight")
    await prompt.press("Enter")
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".content.typing")).to_contain_text("Echo:")
    await page.get_by_role("button", name="Stop").click()
    await expect(answer.locator(".stopped-note")).to_have_text("Stopped — the answer ends here.")
    await expect(answer.locator(".content")).to_contain_text("Echo:")
    # The stopped first turn is kept: the question and the answer so far, marked stopped.
    await expect(page).to_have_url(re.compile(r"[?&]c=\d+"))
    await expect(answer.locator(".meta")).to_contain_text("output tokens")
    stopped = await stored_messages(page)
    assert [(m["role"], m["status"]) for m in stopped] == [("user", None), ("assistant", "stopped")]
    assert stopped[1]["content"].startswith("Echo:")
    await screenshot(page, "chat-stopped")

    # Regenerate the stopped answer: this time it completes, shown in its place.
    openai_upstream.chunk_delay = 0
    await answer.get_by_role("button", name="Regenerate").click()
    await expect(answer.locator(".stopped-note")).to_have_count(0)
    await expect(answer.locator(".meta")).to_contain_text("output tokens")
    first = await stored_messages(page)
    assert [(m["role"], m["content"]) for m in first] == [
        ("user", "one two three four five six seven eight"),
        ("assistant", "Echo: one two three four five six seven eight"),
    ]

    # Regenerate a stored answer: a new version is shown, the turn is not duplicated.
    calls = len(openai_upstream.requests)
    async with page.expect_request(re.compile(rf"replace_from={first[0]['id']}$")):
        await (
            page.locator(".message.assistant").last.get_by_role("button", name="Regenerate").click()
        )
    await expect(page.locator(".message.assistant").last.locator(".meta")).to_contain_text(
        "output tokens"
    )
    await expect(page.locator(".message")).to_have_count(2)
    assert len(openai_upstream.requests) == calls + 1
    assert upstream_messages(openai_upstream) == [
        {"role": "user", "content": "one two three four five six seven eight"}
    ]
    again = await stored_messages(page)
    assert [m["content"] for m in again] == [m["content"] for m in first]

    # A second question, then edit the first one: the branch from it is the new one.
    await ask(page, "second question")
    await expect(page.locator(".message")).to_have_count(4)
    await page.locator(".message.user").first.get_by_role("button", name="Edit").click()
    editor = page.get_by_label("Edit your message")
    await editor.fill("")
    await page.get_by_role("button", name="Save & send").click()
    await expect(page.locator(".edit-box .field-error")).to_contain_text("The message is empty")
    await editor.fill("an edited question")
    await page.get_by_role("button", name="Save & send").click()
    await expect(page.locator(".message")).to_have_count(2)
    await expect(page.locator(".message.assistant .meta")).to_contain_text("output tokens")
    assert upstream_messages(openai_upstream) == [{"role": "user", "content": "an edited question"}]
    edited = await stored_messages(page)
    assert [(m["role"], m["content"]) for m in edited] == [
        ("user", "an edited question"),
        ("assistant", "Echo: an edited question"),
    ]


XSS = (
    "<img src=x onerror=\"document.body.dataset.xss='img'\"> "
    "<script>document.body.dataset.xss='script'</script> **bold** and `code`\n\n"
    "```python\nprint('hi')\n```"
)


async def test_markdown_is_rendered_and_html_is_never_injected(
    page: Page, openai_upstream: SlowChatOpenAI
) -> None:
    await register_with_key(page)
    await page.goto(CHAT)
    openai_upstream.chunk_delay, openai_upstream.stream_chunks = 0.2, 5
    prompt = await chat_prompt(page)
    await prompt.fill(XSS)
    await prompt.press("Enter")
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".content.typing")).to_contain_text("Echo:")
    assert await page.locator("#messages img, #messages script").count() == 0
    await expect(answer.locator(".meta")).to_contain_text("output tokens")

    content = answer.locator(".content")
    await expect(content.locator("strong")).to_have_text("bold")
    await expect(content.locator("p code")).to_have_text("code")
    await expect(content.locator(".code-block .code-head")).to_contain_text("python")
    await expect(content.locator(".code-block pre.hl span.nb")).to_have_text("print")
    await expect(content).to_contain_text("<img src=x onerror=")
    await expect(content).to_contain_text("<script>document.body.dataset.xss='script'</script>")
    await expect(page.locator(".message.user .content")).to_have_text(XSS)
    assert await page.locator("#messages img, #messages script").count() == 0
    await screenshot(page, "chat-markdown")

    # A title is text too.
    item = page.locator("#conversation-list .conversation.active")
    await item.locator("summary").click()
    await item.get_by_role("button", name="Rename").click()
    await page.get_by_label("New title").fill('<img src=y onerror="document.body.dataset.xss=1">')
    await page.get_by_label("New title").press("Enter")
    await expect(page.locator("#conversation-list .conversation.active > a")).to_have_text(
        '<img src=y onerror="document.body.dataset.xss=1">'
    )
    await page.reload()
    await expect(page.locator(".message.assistant .meta")).to_contain_text("output tokens")
    assert await page.locator("#messages img, #conversation-list img").count() == 0
    assert await page.evaluate("document.body.dataset.xss") is None


async def test_sidebar_search_export_delete_and_switch_models(
    page: Page, openai_upstream: SlowChatOpenAI
) -> None:
    await register_with_key(page)
    await page.goto(CHAT)
    await ask(page, "apples are red")
    await page.get_by_role("link", name="New chat").click()
    await expect(page).to_have_url(re.compile(r"/language-models/gpt-4o-mini$"))
    await expect(page.locator(".message")).to_have_count(0)
    await ask(page, "bananas are yellow")
    conversations = page.locator("#conversation-list .conversation")
    await expect(conversations).to_have_count(2)
    await expect(conversations.first).to_contain_text("bananas are yellow")

    search = page.get_by_label("Search conversations")
    await search.fill("APPLE")
    await expect(conversations).to_have_count(1)
    await expect(conversations.first).to_contain_text("apples are red")
    await search.fill("no such thing")
    await expect(page.locator("#conversation-empty")).to_contain_text("No conversation matches")
    await search.fill("")
    await expect(conversations).to_have_count(2)

    # Export the current conversation as Markdown.
    current = page.locator("#conversation-list .conversation.active")
    await current.locator("summary").click()
    link = current.get_by_role("link", name="Export as Markdown")
    href = await link.get_attribute("href")
    assert href is not None and href.endswith("format=markdown")
    exported = await page.request.get(href)
    assert exported.ok and "bananas are yellow" in await exported.text()
    await current.locator("summary").click()

    # Delete it (after confirming): the page starts a new chat.
    async def accept(dialog: Dialog) -> None:
        assert "cannot be undone" in dialog.message
        await dialog.accept()

    page.once("dialog", accept)
    await current.locator("summary").click()
    await current.get_by_role("button", name="Delete").click()
    await expect(conversations).to_have_count(1)
    await expect(page.locator(".message")).to_have_count(0)
    await expect(page).to_have_url(re.compile(r"/language-models/gpt-4o-mini$"))

    # Open the other one from the sidebar, then continue it with another model.
    await conversations.first.get_by_role("link").click()
    await expect(page).to_have_url(re.compile(r"\?c=\d+$"))
    await expect(page.locator(".message.user .content")).to_have_text("apples are red")
    await page.get_by_label("Model").select_option("gpt-4o")
    await expect(page).to_have_url(re.compile(r"/language-models/gpt-4o\?c=\d+$"))
    await ask(page, "and pears?")
    assert json.loads(openai_upstream.last_request.body)["model"] == "gpt-4o"
    assert upstream_messages(openai_upstream) == [
        {"role": "user", "content": "apples are red"},
        {"role": "assistant", "content": "Echo: apples are red"},
        {"role": "user", "content": "and pears?"},
    ]
    await expect(page.locator(".message")).to_have_count(4)


async def test_errors_are_shown_in_the_conversation(
    page: Page, openai_upstream: SlowChatOpenAI, console: Console
) -> None:
    console.allow(r"status of 400")
    await register(page)
    await page.goto(CHAT)
    await expect(page.locator("#model-key-hint")).to_contain_text("You have no key for OpenAI")
    prompt = await chat_prompt(page)
    await prompt.press("Enter")
    await expect(page.locator("#composer-error")).to_have_text("Type a message first.")
    await prompt.fill("hello?")
    await prompt.press("Enter")
    error = page.locator(".message.assistant .message-error")
    await expect(error).to_contain_text("No API key for OpenAI")
    await expect(error).to_have_attribute("role", "alert")
    await screenshot(page, "chat-error")

    # With a key but a refusing upstream, Retry sends the question again.
    response = await page.request.patch(
        "/v2/users/me/api-key",
        data={"provider": "openai", "api_key": "sk-web-user-canary-0123456789abcdef"},
        headers={
            "X-CSRF-Token": await page.locator('meta[name="csrf-token"]').get_attribute("content")
            or ""
        },
    )
    assert response.ok
    openai_upstream.fail_with(400)
    await page.get_by_role("button", name="Retry").click()
    await expect(error).to_contain_text("Bad request")
    openai_upstream.fail_with(None)
    await page.get_by_role("button", name="Retry").click()
    await expect(page.locator(".message.assistant .meta")).to_contain_text("output tokens")
    await expect(page.locator(".message")).to_have_count(2)
