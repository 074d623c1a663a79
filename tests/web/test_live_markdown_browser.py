"""Markdown appears while an answer streams (headings, lists, tables: not raw ``##``, ``-``
and ``|`` that reflow at the end), rendered by the server as the final answer is, so with
the same sanitising; and an answer stopped right after an opening fence shows no empty
code block. At a laptop's and a phone's size."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.web.flows import chat_prompt, register_with_key
from tests.web.live import SlowChatOpenAI

CHAT = "/language-models/gpt-4o-mini"
VIEWPORTS = [{"width": 1366, "height": 900}, {"width": 390, "height": 844}]
STRUCTURED = (
    "intro\n\n## The plan\n\n- alpha\n- beta\n\n| key | value |\n|---|---|\n| one | 1 |\n\n"
    "<img src=x onerror=\"document.body.dataset.xss='live'\">\n\n"
    + " ".join(f"tail{i}" for i in range(40))
)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_markdown_is_rendered_while_the_answer_streams(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: dict[str, int]
) -> None:
    await page.set_viewport_size(viewport)
    await register_with_key(page)
    await page.goto(CHAT)
    openai_upstream.chunk_delay, openai_upstream.stream_chunks = 0.15, 60
    prompt = await chat_prompt(page)
    await prompt.fill(STRUCTURED)
    await prompt.press("Enter")
    live = page.locator(".message.assistant .content.typing")
    # Still streaming (the tail has not arrived), the structure is already there.
    await expect(live.locator("h2")).to_have_text("The plan")
    await expect(live.locator("ul > li")).to_have_text(["alpha", "beta"])
    await expect(live.locator("table td").first).to_have_text("one")
    await expect(live).not_to_contain_text("## The plan")
    await expect(live).to_contain_text("<img src=x onerror=")
    assert await page.locator("#messages img").count() == 0
    await expect(live).to_have_count(1)  # still typing while all of this was seen
    answer = page.locator(".message.assistant .content")
    await expect(page.locator(".message.assistant .meta")).to_contain_text(
        "output tokens", timeout=20_000
    )
    await expect(answer.locator("h2")).to_have_text("The plan")
    await expect(answer).to_contain_text("tail39")
    assert await page.evaluate("document.body.dataset.xss") is None


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_a_stop_right_after_an_opening_fence_shows_no_empty_code_block(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: dict[str, int]
) -> None:
    await page.set_viewport_size(viewport)
    await register_with_key(page)
    await page.goto(CHAT)
    # One word a chunk: the second chunk ends with the fence; the code comes 2.5 s later.
    openai_upstream.chunk_delay, openai_upstream.stream_chunks = 2.5, 100
    prompt = await chat_prompt(page)
    await prompt.fill("look:\n\n```python\n print(1)")
    await prompt.press("Enter")
    live = page.locator(".message.assistant .content.typing")
    await expect(live).to_contain_text("look:", timeout=10_000)
    assert "```" not in await live.inner_text()
    assert await live.locator("pre").count() == 0
    await page.get_by_role("button", name="Stop").click()
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".stopped-note")).to_be_visible()
    await expect(answer.locator(".content")).to_contain_text("look:")
    assert await answer.locator("pre, .code-block").count() == 0
