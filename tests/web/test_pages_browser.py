"""Every page in Chromium: forms with inline errors, keyboard use, the theme toggle, the
small-screen layout, API tokens shown once, and the admin link for staff only."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from modelyard.accounts.users import create_user
from modelyard.config import Settings
from modelyard.db.engine import create_database
from tests.web.conftest import USER_KEY, Console, screenshot
from tests.web.flows import PASSWORD, ask, register, register_with_key
from tests.web.live import LiveServer


async def add_account(settings: Settings, email: str, *, staff: bool = False) -> None:
    database = create_database(settings)
    try:
        async with database.sessions() as session:
            await create_user(session, email=email, password=PASSWORD, is_staff=staff)
    finally:
        await database.dispose()


async def test_sign_in_with_the_keyboard_and_errors_inline(
    page: Page, live_settings: Settings, console: Console
) -> None:
    console.allow(r"status of 401")
    await add_account(live_settings, "kb@example.com")
    await page.goto("/language-models")
    await expect(page).to_have_url(re.compile(r"/login\?next=/language-models$"))
    await expect(page.get_by_label("E-mail")).to_be_focused()
    await page.keyboard.type("kb@example.com")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password", exact=True)).to_be_focused()
    await page.keyboard.type("wrong password")
    await page.keyboard.press("Enter")
    await expect(page.locator("#login-error")).to_have_text("Incorrect e-mail or password.")
    await expect(page.get_by_label("E-mail")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("E-mail")).to_have_value("kb@example.com")
    await screenshot(page, "login-error")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password", exact=True).press("Enter")
    await expect(page).to_have_url(re.compile(r"/language-models$"))
    # The skip link is the first stop of the keyboard and leads to the content.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


async def test_register_shows_each_problem_next_to_its_field(
    page: Page, live_settings: Settings, console: Console
) -> None:
    console.allow(r"status of 400|status of 409")
    await add_account(live_settings, "taken@example.com")
    await page.goto("/register")
    await page.get_by_label("E-mail").fill("not an address")
    await page.get_by_label("Password", exact=True).fill("short")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("#email-error")).to_contain_text("Enter a valid e-mail address")
    await expect(page.locator("#password-error")).to_have_text("Use at least 8 characters.")
    await expect(page.get_by_label("E-mail")).to_have_value("not an address")
    await expect(page.get_by_label("E-mail")).to_be_focused()
    await expect(page.get_by_label("Password", exact=True)).to_have_value("")
    await screenshot(page, "register-errors")

    await page.get_by_label("E-mail").fill("taken@example.com")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password, again").fill("something else")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("#confirm-error")).to_contain_text("The two passwords differ")
    await expect(page.get_by_label("Password, again")).to_be_focused()
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password, again").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("#email-error")).to_contain_text("exists already")


async def test_profile_key_errors_and_api_tokens(page: Page, console: Console) -> None:
    console.allow(r"status of 400")
    await register(page)
    await page.goto("/profile")
    await expect(page.locator("body")).to_have_attribute("data-profile-ready", "true")
    key = page.get_by_label("OpenAI API key")
    save = page.locator("#key-openai").get_by_role("button", name="Save key")
    await save.click()
    await expect(page.locator("#key-error-openai")).to_have_text("Paste your OpenAI key first.")
    malformed = "pk-canary-not-an-openai-key-123456"
    await key.fill(malformed)
    await save.click()
    error = page.locator("#key-error-openai")
    await expect(error).to_have_text('OpenAI API key should start with "sk-"')
    await expect(key).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#key-openai [data-key-status]")).to_have_text("Not set")
    assert malformed not in (await error.text_content() or "")
    await screenshot(page, "profile-key-error")

    await key.fill(USER_KEY)
    await save.click()
    await expect(page.locator("#key-openai [data-key-status]")).to_have_text("Key set")
    await expect(page.locator("#key-error-openai")).to_be_hidden()
    remove = page.locator("#key-openai").get_by_role("button", name="Remove key")
    page.once("dialog", lambda dialog: dialog.accept())
    await remove.click()
    await expect(page.locator("#key-openai [data-key-status]")).to_have_text("Not set")
    await expect(remove).to_be_hidden()

    # A token is shown once, then only by its prefix; revoking it keeps it listed as such.
    await page.get_by_role("button", name="Create token").click()
    await expect(page.locator("#token-error")).to_contain_text("Give the token a name")
    await page.get_by_label("Name", exact=True).fill("laptop")
    await page.get_by_role("button", name="Create token").click()
    shown = page.get_by_label("New API token")
    await expect(shown).to_have_value(re.compile(r"^myd_"))
    token = await shown.input_value()
    row = page.locator("#token-rows tr", has_text="laptop")
    await expect(row).to_contain_text("never")
    await screenshot(page, "profile-token")
    await page.reload()
    await expect(row).to_be_visible()
    assert token not in await page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="Revoke token laptop").click()
    await expect(row).to_contain_text("Revoked")
    used = await page.request.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert used.status == 401


async def test_theme_toggle_is_remembered(page: Page, openai_upstream: object) -> None:
    await register_with_key(page)
    await page.goto("/language-models/gpt-4o-mini")
    await ask(page, "Show me `code` in the dark\n\n```python\nx = 1\n```")
    toggle = page.get_by_role("button", name="Switch to dark theme")
    await toggle.click()
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await expect(page.get_by_role("button", name="Switch to light theme")).to_be_visible()
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await expect(page.locator(".message.assistant .meta")).to_contain_text("output tokens")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 17, 21)"
    await screenshot(page, "chat-dark")
    for path, name in (("/language-models", "language-models-dark"), ("/profile", "profile-dark")):
        await page.goto(path)
        await screenshot(page, name)
    await page.goto("/usage")
    await expect(page.locator("#total-requests")).to_have_text("1")
    await screenshot(page, "usage-dark")


async def test_the_system_dark_preference_and_small_screens(
    browser: Browser, live: LiveServer, console: Console
) -> None:
    context = await browser.new_context(
        base_url=live.url, viewport={"width": 390, "height": 844}, color_scheme="dark"
    )
    page = await context.new_page()
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    try:
        await register(page)
        await expect(page.get_by_role("button", name="Switch to light theme")).to_be_visible()
        assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == (
            "rgb(15, 17, 21)"
        )
        await screenshot(page, "language-models-mobile")
        await page.goto("/language-models/gpt-4o-mini")
        sidebar = page.locator("#chat-sidebar")
        await expect(sidebar).not_to_be_in_viewport()
        toggle = page.get_by_role("button", name="Show conversations")
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await expect(sidebar).to_be_in_viewport()
        await expect(page.get_by_label("Search conversations")).to_be_visible()
        await screenshot(page, "chat-mobile")
    finally:
        await context.close()
    assert console.unexpected() == []


async def test_staff_see_the_admin_link(
    page: Page, live_settings: Settings, console: Console
) -> None:
    await add_account(live_settings, "boss@example.com", staff=True)
    await add_account(live_settings, "user@example.com")
    for email, staff in (("user@example.com", False), ("boss@example.com", True)):
        await page.goto("/login")
        await page.get_by_label("E-mail").fill(email)
        await page.get_by_label("Password", exact=True).fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("link", name="Training")).to_have_attribute(
            "href", "/training"
        )
        admin = page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
        await expect(admin).to_have_count(1 if staff else 0)
        await page.get_by_role("button", name="Sign out").click()
        await expect(page).to_have_url(re.compile(r"/login$"))
