"""Steps the browser tests share: create an account through the form, add a key, chat."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page, expect

from tests.web.conftest import USER_KEY

__all__ = ["PASSWORD", "ask", "csrf_headers", "register", "register_with_key"]

PASSWORD = "correct horse battery"


async def register(page: Page, email: str = "ada@example.com") -> None:
    """Create an account with the register form; the browser is then signed in."""
    await page.goto("/register")
    await page.get_by_label("Name").fill("Ada Lovelace")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password, again").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page).to_have_url(re.compile(r"/language-models$"))


async def csrf_headers(page: Page) -> dict[str, str]:
    """The header a signed-in page's scripts send with writes."""
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    return {"X-CSRF-Token": cookies["modelyard_csrf"]}


async def register_with_key(page: Page, email: str = "ada@example.com") -> None:
    """An account with an OpenAI key (set through the API, as the profile page does)."""
    await register(page, email)
    response = await page.request.patch(
        "/v2/users/me/api-key",
        data={"provider": "openai", "api_key": USER_KEY},
        headers=await csrf_headers(page),
    )
    assert response.ok, await response.text()


async def chat_prompt(page: Page) -> Locator:
    """The chat's message box, once the page's script has attached its handlers (a key
    pressed before that would do nothing, as in a real browser)."""
    await expect(page.locator("#chat-app")).to_have_attribute("data-ready", "true")
    return page.get_by_role("textbox", name="Message")


async def ask(page: Page, text: str) -> None:
    """Send ``text`` from the composer and wait for the stored answer."""
    prompt = await chat_prompt(page)
    await prompt.fill(text)
    await prompt.press("Enter")
    await expect(page.locator(".message.assistant").last.locator(".meta")).to_contain_text(
        "output tokens"
    )
