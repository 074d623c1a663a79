"""A failed answer in the chat: a user reads one short, friendly error with the request
id; staff read what each target did. Provider hosts never reach the user's page."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from modelyard.accounts.users import create_user
from modelyard.config import Settings
from modelyard.db.engine import create_database
from tests.web.conftest import Console, screenshot
from tests.web.flows import PASSWORD, chat_prompt, register_with_key
from tests.web.live import SlowChatOpenAI

CHAT = "/language-models/gpt-4o-mini"


async def fail_a_turn(page: Page) -> str:
    await page.goto(CHAT)
    prompt = await chat_prompt(page)
    await prompt.fill("will this work?")
    async with page.expect_response(re.compile(r"/v2/llm/chat/completions$")) as answered:
        await prompt.press("Enter")
    response = await answered.value
    assert response.status == 502
    return response.headers["x-request-id"]


async def test_users_read_a_short_error_with_the_request_id(
    page: Page, openai_upstream: SlowChatOpenAI, console: Console
) -> None:
    console.allow(r"status of 502")
    await register_with_key(page)
    openai_upstream.fail_with(500)
    request_id = await fail_a_turn(page)
    error = page.locator(".message.assistant .message-error")
    await expect(error).to_contain_text("The model could not answer right now")
    await expect(error).to_contain_text(f"request id {request_id}")
    text = await error.inner_text()
    assert "127.0.0.1" not in text and "Every target" not in text and "HTTP 500" not in text
    await screenshot(page, "chat-friendly-error")


async def test_staff_read_what_each_target_did(
    page: Page, openai_upstream: SlowChatOpenAI, live_settings: Settings, console: Console
) -> None:
    console.allow(r"status of 502")
    database = create_database(live_settings)
    try:
        async with database.sessions() as session:
            await create_user(session, email="ops@example.com", password=PASSWORD, is_staff=True)
    finally:
        await database.dispose()
    await page.goto("/login")
    await page.get_by_label("E-mail").fill("ops@example.com")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password", exact=True).press("Enter")
    await expect(page.locator("#who")).to_contain_text("ops@example.com")
    response = await page.request.patch(
        "/v2/users/me/api-key",
        data={"provider": "openai", "api_key": "sk-web-user-canary-0123456789abcdef"},
        headers={
            "X-CSRF-Token": await page.locator('meta[name="csrf-token"]').get_attribute("content")
            or ""
        },
    )
    assert response.ok
    openai_upstream.fail_with(500)
    request_id = await fail_a_turn(page)
    error = page.locator(".message.assistant .message-error")
    await expect(error).to_contain_text("Every target failed")
    await expect(error).to_contain_text("HTTP 500")
    await expect(error).to_contain_text(f"request id {request_id}")
