"""Attachments in the browser, at a laptop's and a phone's size: files picked with the
Attach button become chips (removable until sent), a refused file says why, and the sent
message shows its files (images as thumbnails) also after a reload, while the model got
them as content parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.web.attachment_files import png
from tests.web.conftest import Console, screenshot
from tests.web.flows import chat_prompt, register_with_key
from tests.web.live import SlowChatOpenAI

CHAT = "/language-models/gpt-4o-mini"
VIEWPORTS = [{"width": 1366, "height": 900}, {"width": 390, "height": 844}]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_attach_send_and_see_files(
    page: Page,
    console: Console,
    openai_upstream: SlowChatOpenAI,
    viewport: dict[str, int],
    tmp_path: Path,
) -> None:
    console.allow("status of 415")  # the refused file, shown to the user
    await page.set_viewport_size(viewport)
    notes = tmp_path / "notes.md"
    notes.write_text("# Plan\n\nShip on Friday.\n")
    chart = tmp_path / "chart.png"
    chart.write_bytes(png(4, 3))
    tool = tmp_path / "tool.exe"
    tool.write_bytes(b"MZ\x90\x00" + bytes(64))
    await register_with_key(page)
    await page.goto(CHAT)
    prompt = await chat_prompt(page)
    files = page.locator("#attach-input")

    await files.set_input_files(str(tool))
    await expect(page.locator("#composer-error")).to_contain_text("not supported")
    await expect(page.locator("#attachment-chips .chip")).to_have_count(0)

    await files.set_input_files([str(notes), str(chart)])
    chips = page.locator("#attachment-chips .chip")
    await expect(chips).to_have_count(2)
    await expect(chips.first).to_contain_text("notes.md")
    await expect(chips.first).to_contain_text("tokens")
    await page.get_by_role("button", name="Remove notes.md").click()
    await expect(chips).to_have_count(1)
    await files.set_input_files(str(notes))
    await expect(chips).to_have_count(2)
    await screenshot(page, f"chat-attachments-composer-{viewport['width']}")

    await prompt.fill("Summarise these")
    await prompt.press("Enter")
    question = page.locator(".message.user").last
    await expect(page.locator(".message.assistant .meta")).to_contain_text("output tokens")
    await expect(chips).to_have_count(0)
    await expect(question.locator(".message-files img")).to_have_attribute("alt", "chart.png")
    await expect(question.locator(".message-files")).to_contain_text("notes.md")
    sent = json.loads(openai_upstream.last_request.body)["messages"][-1]["content"]
    kinds = [part["type"] for part in sent]
    assert kinds == ["text", "image_url", "text"]
    assert "Ship on Friday." in sent[2]["text"]
    assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")

    await page.reload()
    question = page.locator(".message.user").last
    await expect(question.locator(".message-files img")).to_have_attribute("alt", "chart.png")
    loaded = await question.locator(".message-files img").evaluate("img => img.naturalWidth")
    assert loaded == 4
    await screenshot(page, f"chat-attachments-{viewport['width']}")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"]
