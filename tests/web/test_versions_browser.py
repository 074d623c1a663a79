"""Message versions and Continue in the browser, at a laptop's and a phone's size:
Regenerate and edit keep the earlier versions behind ``< 1/2 >``, the switch shows the
branch through the version chosen (also after a reload), and Continue completes a stopped
answer in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import screenshot
from tests.web.flows import ask, chat_prompt, register_with_key
from tests.web.live import SlowChatOpenAI

CHAT = "/language-models/gpt-4o-mini"
VIEWPORTS = [{"width": 1366, "height": 900}, {"width": 390, "height": 844}]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_versions_of_answers_and_questions(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: dict[str, int]
) -> None:
    await page.set_viewport_size(viewport)
    await register_with_key(page)
    await page.goto(CHAT)
    await ask(page, "alpha")
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".versions")).to_have_count(0)  # one version: no switch

    openai_upstream.scripted_reply = "A second take"
    await answer.get_by_role("button", name="Regenerate").click()
    await expect(answer.locator(".content")).to_have_text("A second take")
    versions = answer.get_by_role("group", name="Versions")
    await expect(versions).to_contain_text("2/2")
    await expect(versions.get_by_role("button", name="Next version")).to_be_disabled()
    await versions.get_by_role("button", name="Previous version").click()
    await expect(answer.locator(".content")).to_have_text("Echo: alpha")
    await expect(versions).to_contain_text("1/2")
    await page.reload()
    await expect(page.locator(".message.assistant .content")).to_have_text("Echo: alpha")

    # An edit is a version of the question; the earlier one comes back with its answers.
    openai_upstream.scripted_reply = None
    await page.locator(".message.user").first.get_by_role("button", name="Edit").click()
    await page.get_by_label("Edit your message").fill("beta")
    await page.get_by_role("button", name="Save & send").click()
    await expect(page.locator(".message.assistant .content")).to_have_text("Echo: beta")
    question = page.locator(".message.user").first
    await expect(question.get_by_role("group", name="Versions")).to_contain_text("2/2")
    await screenshot(page, f"chat-versions-{viewport['width']}")
    await question.get_by_role("button", name="Previous version").click()
    await expect(question.locator(".content")).to_have_text("alpha")
    # (with its newest answer)
    await expect(page.locator(".message.assistant .content")).to_have_text("A second take")
    await expect(page.locator(".message.assistant").get_by_role("group")).to_contain_text("2/2")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"]


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_continue_completes_a_stopped_answer(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: dict[str, int]
) -> None:
    await page.set_viewport_size(viewport)
    await register_with_key(page)
    await page.goto(CHAT)
    openai_upstream.chunk_delay, openai_upstream.stream_chunks = 0.4, 8
    prompt = await chat_prompt(page)
    await prompt.fill("one two three four five six seven eight")
    await prompt.press("Enter")
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".content.typing")).to_contain_text("Echo:")
    await page.get_by_role("button", name="Stop").click()
    await expect(answer.locator(".stopped-note")).to_be_visible()
    await expect(answer.locator(".meta")).to_contain_text("output tokens")
    partial = await answer.locator(".content").inner_text()

    openai_upstream.chunk_delay = 0
    openai_upstream.scripted_reply = "and the rest."
    await answer.get_by_role("button", name="Continue").click()
    await expect(answer.locator(".content")).to_contain_text("and the rest.")
    await expect(answer.locator(".stopped-note")).to_have_count(0)
    await expect(answer.get_by_role("button", name="Continue")).to_have_count(0)
    text = await answer.locator(".content").inner_text()
    assert text.startswith(partial.strip()) and text.endswith("and the rest.")
    await expect(page.locator(".message")).to_have_count(2)  # appended, not a new turn
    await page.reload()
    await expect(page.locator(".message.assistant .content")).to_contain_text("and the rest.")


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["desktop", "phone"])
async def test_an_edited_question_keeps_each_versions_files(
    page: Page, openai_upstream: SlowChatOpenAI, viewport: dict[str, int], tmp_path: Path
) -> None:
    """Each version of an edited question shows the files it was sent with, also after
    switching back to the earlier one and after a reload."""
    await page.set_viewport_size(viewport)
    notes = tmp_path / "notes.md"
    notes.write_text("# Plan\n\nShip on Friday.\n")
    await register_with_key(page)
    await page.goto(CHAT)
    prompt = await chat_prompt(page)
    await page.locator("#attach-input").set_input_files(str(notes))
    await expect(page.locator("#attachment-chips .chip")).to_contain_text("tokens")
    await prompt.fill("alpha")
    await prompt.press("Enter")
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".meta")).to_contain_text("output tokens")
    question = page.locator(".message.user").first
    await expect(question.locator(".message-files")).to_contain_text("notes.md")

    await question.get_by_role("button", name="Edit").click()
    await page.get_by_label("Edit your message").fill("beta")
    await page.get_by_role("button", name="Save & send").click()
    await expect(page.locator(".message.assistant .content")).to_contain_text("Echo: beta")
    versions = question.get_by_role("group", name="Versions")
    await expect(versions).to_contain_text("2/2")
    await expect(question.locator(".message-files")).to_contain_text("notes.md")
    sent = json.loads(openai_upstream.last_request.body)["messages"][-1]["content"]
    assert "Ship on Friday." in sent[-1]["text"]  # the edit was sent with the file

    await versions.get_by_role("button", name="Previous version").click()
    await expect(question.locator(".content")).to_have_text("alpha")
    await expect(versions).to_contain_text("1/2")
    await expect(question.locator(".message-files")).to_contain_text("notes.md")
    await page.reload()
    question = page.locator(".message.user").first
    await expect(question.locator(".content")).to_have_text("alpha")
    await expect(question.locator(".message-files")).to_contain_text("notes.md")
    await question.get_by_role("button", name="Next version").click()
    await expect(question.locator(".content")).to_have_text("beta")
    await expect(question.locator(".message-files")).to_contain_text("notes.md")
