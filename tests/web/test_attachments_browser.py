"""Attachments in the browser, at a laptop's and a phone's size: files picked with the
Attach button become chips (removable until sent), a refused file says why, and the sent
message shows its files (images as thumbnails) also after a reload, while the model got
them as content parts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, expect

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
    # A message waits for its uploads (pressing Send earlier is refused, as a user is told).
    await expect(page.locator("#attachment-chips .chip.uploading")).to_have_count(0)
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


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_images_only_for_a_model_that_takes_them(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: dict[str, int], tmp_path: Path
) -> None:
    """The Attach control offers images only while the chosen model takes them (text and
    PDF always); an image picked, renamed or kept from before the switch is refused with
    what to do, and nothing is sent until it is removed."""
    openai_upstream.models.append("gpt-3.5-turbo")  # a catalog model without vision
    await page.set_viewport_size(viewport)
    chart = tmp_path / "chart.png"
    chart.write_bytes(png(4, 3))
    disguised = tmp_path / "chart.txt"  # an image by its bytes, whatever its name
    disguised.write_bytes(png(4, 3))
    notes = tmp_path / "notes.md"
    notes.write_text("# Plan\n")
    await register_with_key(page)
    await page.goto(CHAT)
    prompt = await chat_prompt(page)
    files = page.locator("#attach-input")
    attach = page.get_by_role("button", name="Attach files")
    chips = page.locator("#attachment-chips .chip")
    error = page.locator("#composer-error")
    assert "image/png" in (await files.get_attribute("accept") or "")
    await expect(attach).to_have_attribute("title", "Attach images, PDF or text files")

    await page.select_option("#model-select", "gpt-3.5-turbo")
    accept = await files.get_attribute("accept") or ""
    assert "image/" not in accept and ".pdf" in accept and ".md" in accept
    await expect(attach).to_have_attribute("title", re.compile("takes no images"))
    await files.set_input_files(str(chart))
    await expect(error).to_contain_text("GPT-3.5 Turbo does not take images, so chart.png")
    await expect(chips).to_have_count(0)
    await files.set_input_files(str(disguised))
    await expect(error).to_contain_text("so chart.txt cannot be sent")
    await expect(chips).to_have_count(0)

    await page.select_option("#model-select", "gpt-4o-mini")
    await expect(error).to_be_hidden()
    await files.set_input_files(str(chart))
    await expect(chips).to_have_attribute("data-attachment-id", re.compile(r"^\d+$"))
    await page.select_option("#model-select", "gpt-3.5-turbo")
    await expect(error).to_contain_text("does not take images: remove chart.png to send")
    await prompt.fill("What is this?")
    await prompt.press("Enter")
    await expect(page.locator(".message")).to_have_count(0)  # nothing sent
    await screenshot(page, f"chat-attachments-no-vision-{viewport['width']}")
    await page.get_by_role("button", name="Remove chart.png").click()
    await expect(error).to_be_hidden()
    await files.set_input_files(str(notes))
    await expect(chips).to_contain_text("tokens")
    await prompt.press("Enter")
    await expect(page.locator(".message.assistant .meta")).to_contain_text("output tokens")
    assert json.loads(openai_upstream.last_request.body)["model"] == "gpt-3.5-turbo"
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"]


async def test_a_message_waits_for_its_uploads(
    page: Page, openai_upstream: SlowChatOpenAI, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Plan\n\nShip on Friday.\n")
    await register_with_key(page)
    await page.goto(CHAT)
    prompt = await chat_prompt(page)
    held: list[Route] = []

    async def hold(route: Route) -> None:
        held.append(route)

    await page.route("**/web/api/attachments", hold)
    await page.locator("#attach-input").set_input_files(str(notes))
    await expect(page.locator("#attachment-chips .chip.uploading")).to_have_count(1)
    await prompt.fill("Summarise this")
    await prompt.press("Enter")
    await expect(page.locator("#composer-error")).to_contain_text("Wait until the files")
    await expect(page.locator(".message")).to_have_count(0)
    await expect(prompt).to_have_value("Summarise this")  # nothing lost

    await held[0].continue_()
    await expect(page.locator("#attachment-chips .chip.uploading")).to_have_count(0)
    await prompt.press("Enter")
    await expect(page.locator(".message.assistant .meta")).to_contain_text("output tokens")
    sent = json.loads(openai_upstream.last_request.body)["messages"][-1]
    assert "Ship on Friday" in json.dumps(sent)
