"""Conversation settings and custom instructions in Chromium: a new chat's settings go
with its first message and stay with the conversation after a reload, a bad value is
explained in the dialog, and the profile's custom instructions reach a later chat."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.web.conftest import screenshot
from tests.web.flows import ask, register_with_key
from tests.web.live import SlowChatOpenAI

CHAT = "/language-models/gpt-4o-mini"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}


def sent(upstream: SlowChatOpenAI) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(upstream.last_request.body)
    return body


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_settings_go_with_every_turn_and_custom_instructions(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: ViewportSize
) -> None:
    await page.set_viewport_size(viewport)
    await register_with_key(page)
    await page.goto(CHAT)
    await page.get_by_role("button", name="Conversation settings").click()
    dialog = page.get_by_role("dialog", name="Conversation settings")
    await dialog.get_by_label("System prompt").fill("You are a terse pirate.")
    await dialog.get_by_label("Temperature").fill("7")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator("#settings-error")).to_contain_text("0 to 2")
    await dialog.get_by_label("Temperature").fill("0.4")
    await dialog.get_by_label("Max tokens").fill("64")
    width = await page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width
    await screenshot(page, f"chat-settings-{'phone' if viewport is PHONE else 'desktop'}")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog).to_be_hidden()

    await ask(page, "where is the gold?")
    body = sent(openai_upstream)
    assert body["messages"][0] == {"role": "system", "content": "You are a terse pirate."}
    assert body["temperature"] == 0.4 and body["max_tokens"] == 64
    # Saved with the conversation: after a reload the next turn gets them from the server.
    await page.reload()
    await ask(page, "and the ship?")
    body = sent(openai_upstream)
    assert body["messages"][0] == {"role": "system", "content": "You are a terse pirate."}
    assert body["temperature"] == 0.4 and body["max_tokens"] == 64
    assert [m["role"] for m in body["messages"]].count("system") == 1
    await page.get_by_role("button", name="Conversation settings").click()
    await expect(dialog.get_by_label("System prompt")).to_have_value("You are a terse pirate.")
    await expect(dialog.get_by_label("Max tokens")).to_have_value("64")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(page.locator(".message.user")).to_have_count(2)  # the prompt is no message

    # Custom instructions from the profile reach a new chat without settings of its own.
    await page.goto("/profile")
    await page.get_by_label("What should the models know").fill("Call me Captain.")
    await page.get_by_role("button", name="Save instructions").click()
    await expect(page.locator("#instructions-status")).to_have_text("Saved.")
    await page.reload()
    await expect(page.get_by_label("What should the models know")).to_have_value("Call me Captain.")
    await page.goto(CHAT)
    await ask(page, "hello")
    body = sent(openai_upstream)
    assert body["messages"][0] == {"role": "system", "content": "Call me Captain."}
    assert "temperature" not in body or body["temperature"] is None
