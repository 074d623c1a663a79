"""A new user's first visit, in Chromium against the app on 127.0.0.1: register, add an
OpenAI key in the profile (never echoed), chat with a streamed answer, find and rename the
conversation, and see the cost on the usage page."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.web.conftest import USER_KEY, screenshot
from tests.web.flows import chat_prompt, register
from tests.web.live import SlowChatOpenAI


async def test_register_add_a_key_chat_rename_and_see_the_cost(
    page: Page, openai_upstream: SlowChatOpenAI
) -> None:
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await screenshot(page, "login")
    await register(page)

    # Without a key only the local models are usable; the others wait for a key.
    await expect(page.locator("#usable-models")).not_to_contain_text("GPT-4o mini")
    await expect(page.locator("#locked-title")).to_contain_text("need a key")
    await screenshot(page, "language-models-without-keys")

    # Profile: the key field hides its text until asked, and the key is never shown back.
    await page.goto("/profile")
    await expect(page.locator("body")).to_have_attribute("data-profile-ready", "true")
    field = page.get_by_label("OpenAI API key")
    await expect(field).to_have_attribute("type", "password")
    await field.fill(USER_KEY)
    show = page.get_by_role("button", name="Show OpenAI key")
    await show.click()
    await expect(field).to_have_attribute("type", "text")
    await expect(page.get_by_role("button", name="Hide OpenAI key")).to_have_attribute(
        "aria-pressed", "true"
    )
    await page.locator("#key-openai").get_by_role("button", name="Save key").click()
    await expect(page.locator("#key-openai [data-key-status]")).to_have_text("Key set")
    await expect(field).to_have_value("")
    await expect(field).to_have_attribute("type", "password")
    await screenshot(page, "profile")
    await page.reload()
    await expect(page.locator("#key-openai [data-key-status]")).to_have_text("Key set")
    assert USER_KEY not in await page.content()
    source = await (await page.request.get("/profile")).text()
    assert USER_KEY not in source and "Key set" in source

    # The OpenAI models are usable now: price, context and "Try now".
    await page.goto("/language-models")
    card = page.locator("#usable-models [data-model-card]", has_text="GPT-4o mini")
    await expect(card).to_contain_text("$0.15")
    await expect(card).to_contain_text("$0.60")
    await expect(card).to_contain_text("128K")
    await screenshot(page, "language-models")
    await card.get_by_role("link", name="Try GPT-4o mini now").click()
    await expect(page).to_have_url(re.compile(r"/language-models/gpt-4o-mini$"))
    await expect(page.get_by_label("Model")).to_have_value("gpt-4o-mini")

    # A streamed answer: words appear while the stream is still open.
    openai_upstream.chunk_delay = 0.25
    openai_upstream.stream_chunks = 6
    prompt = await chat_prompt(page)
    await prompt.fill("Tell me about the Analytical Engine please")
    await prompt.press("Enter")
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".content.typing")).to_contain_text("Echo:")
    await expect(page.get_by_role("button", name="Stop")).to_be_visible()
    await expect(answer.locator(".content")).to_have_text(
        "Echo: Tell me about the Analytical Engine please"
    )
    await expect(answer.locator(".meta")).to_contain_text("output tokens")
    await expect(answer.locator(".meta")).to_contain_text("$0.00000")
    await expect(page.locator(".message.user .meta")).to_contain_text("input tokens")
    assert openai_upstream.last_request.header("authorization") == f"Bearer {USER_KEY}"
    await expect(page).to_have_url(re.compile(r"/language-models/gpt-4o-mini\?c=\d+$"))

    # The conversation is in the sidebar, titled after the question; rename it.
    item = page.locator("#conversation-list .conversation.active")
    await expect(item).to_contain_text("Tell me about the Analytical Engine please")
    await screenshot(page, "chat")
    await item.locator("summary").click()
    await item.get_by_role("button", name="Rename").click()
    title = page.get_by_label("New title")
    await title.fill("")
    await title.press("Enter")
    await expect(page.locator("#conversation-list .field-error")).to_have_text(
        "Enter a title (1 to 200 characters)."
    )
    await title.fill("Babbage's engine")
    await title.press("Enter")
    await expect(page.locator("#conversation-list .conversation.active")).to_have_text(
        re.compile("Babbage's engine")
    )
    await expect(page.locator("#conversation-title")).to_have_text("Babbage's engine")
    await page.reload()
    await expect(page.locator("#conversation-title")).to_have_text("Babbage's engine")
    await expect(page.locator(".message")).to_have_count(2)

    # Usage: the cost of that one request, in the totals, charts and tables.
    await page.get_by_role("link", name="Usage").click()
    await expect(page.locator("#total-requests")).to_have_text("1")
    cost = await page.locator("#total-cost").text_content()
    assert cost is not None and re.fullmatch(r"\$0\.0000\d+", cost), cost
    await expect(page.locator("#model-rows")).to_contain_text("gpt-4o-mini")
    await expect(page.locator("#model-rows")).to_contain_text(cost)
    await expect(page.locator("#chart-day-cost svg rect")).to_have_count(1)
    await expect(page.locator("#chart-model-tokens svg rect")).to_have_count(2)
    csv = await page.locator("#usage-csv").get_attribute("href")
    assert csv is not None and csv.startswith("/v2/usage/export.csv?start=")
    exported = await page.request.get(csv)
    assert exported.ok and "gpt-4o-mini" in await exported.text()
    await screenshot(page, "usage")

    # The home page sums up the month and leads back into the conversation.
    await page.get_by_role("link", name="modelyard").click()
    await expect(page.locator("#home-cost")).to_have_text(cost)
    await page.get_by_role("link", name="Babbage's engine").click()
    await expect(page.locator("#conversation-title")).to_have_text("Babbage's engine")
    await page.goto("/")
    await screenshot(page, "home")

    # Sign out: the pages ask to sign in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto("/usage")
    await expect(page).to_have_url(re.compile(r"/login\?next=/usage$"))
