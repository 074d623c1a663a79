"""The chat sidebar in Chromium at both sizes: conversations grouped by date with pinned
ones first, a generated title after the first answer, archive and unarchive, and a
read-only share link that a signed-out browser can open until its owner revokes it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, Locator, Page, ViewportSize, expect
from sqlalchemy import update

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import Conversation
from tests.web.conftest import screenshot
from tests.web.flows import ask, register_with_key
from tests.web.live import LiveServer

CHAT = "/language-models/gpt-4o-mini"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    """The app with a title model: the fake upstream's echo of the title prompt begins
    with ``Echo: Question:``, which becomes the title ``Echo: Question``."""
    return settings.model_copy(update={"usage_flush_seconds": 0.1, "title_model": "gpt-4o-mini"})


async def age(database: Database, title: str, days: int) -> None:
    """Make the conversation titled ``title`` last active ``days`` ago."""
    async with database.sessions() as session:
        result = await session.execute(
            update(Conversation)
            .where(Conversation.title == title)
            .values(updated_at=datetime.now(UTC) - timedelta(days=days))
        )
        await session.commit()
    assert getattr(result, "rowcount", 0) == 1, f"no conversation titled {title!r}"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_groups_pin_archive_and_generated_titles(
    page: Page, database: Database, viewport: ViewportSize
) -> None:
    await page.set_viewport_size(viewport)
    await register_with_key(page)
    await page.goto(CHAT)
    await ask(page, "apples are red")
    conversations = page.locator("#conversation-list .conversation")
    # The first answer brings a title written by the title model.
    await expect(page.locator("#conversation-title")).to_have_text("Echo: Question")
    await expect(conversations.first).to_contain_text("Echo: Question")
    # Each conversation shows its model under its title.
    shown = await conversations.first.locator("a[data-model]").evaluate(
        "link => getComputedStyle(link, '::after').content"
    )
    assert shown == '"gpt-4o-mini"'
    await open_sidebar(page)
    await page.get_by_role("link", name="New chat").click()
    await ask(page, "bananas are yellow")
    await expect(conversations).to_have_count(2)
    await open_sidebar(page)
    await page.get_by_role("link", name="New chat").click()
    await ask(page, "cherries are dark")
    await expect(conversations).to_have_count(3)

    # Rename two so they can be told apart, then date one of them last week.
    async def rename(old: str, new: str) -> None:
        found = conversations.filter(has_text=old).first
        row = page.locator(f"#conversation-list [data-id='{await found.get_attribute('data-id')}']")
        await open_menu(page, row)
        await row.get_by_role("button", name="Rename").click()
        box = row.get_by_label("New title")
        await box.fill(new)
        await box.press("Enter")
        await expect(conversations.filter(has_text=new)).to_have_count(1)

    await rename("Echo: Question", "Cherries")
    await rename("Echo: Question", "Bananas")
    await rename("Echo: Question", "Apples")
    await age(database, "Apples", 3)
    await page.goto(CHAT)
    groups = page.locator("#conversation-list .conversation-group")
    await expect(groups).to_have_count(2)
    await expect(groups.nth(0).locator(".group-label")).to_have_text("Today")
    await expect(groups.nth(1).locator(".group-label")).to_have_text("Previous 7 days")
    await expect(groups.nth(1)).to_contain_text("Apples")

    # Pinned: first, under its own heading, and it stays there after a reload.
    apples = conversations.filter(has_text="Apples")
    await open_menu(page, apples)
    await apples.get_by_role("button", name="Pin").click()
    await expect(groups.nth(0).locator(".group-label")).to_have_text("Pinned")
    await expect(groups.nth(0)).to_contain_text("Apples")
    await page.reload()
    await expect(groups.nth(0).locator(".group-label")).to_have_text("Pinned")
    await expect(conversations.first).to_contain_text("Apples")

    # Archived: out of the sidebar, in the Archived dialog, and back again.
    bananas = conversations.filter(has_text="Bananas")
    await open_menu(page, bananas)
    await bananas.get_by_role("button", name="Archive").click()
    await expect(conversations).to_have_count(2)
    await expect(conversations.filter(has_text="Bananas")).to_have_count(0)
    await open_sidebar(page)
    await page.get_by_role("button", name="Archived").click()
    dialog = page.get_by_role("dialog", name="Archived conversations")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator(".archived-item")).to_have_count(1)
    await expect(dialog.locator(".archived-item")).to_contain_text("Bananas")
    width = await page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width
    await screenshot(page, f"sidebar-archived-{'phone' if viewport is PHONE else 'desktop'}")
    await dialog.get_by_role("button", name="Unarchive").click()
    await expect(dialog.locator(".archived-item")).to_have_count(0)
    await dialog.get_by_role("button", name="Close").first.click()
    await expect(conversations).to_have_count(3)


async def test_a_share_link_opens_signed_out_until_revoked(
    page: Page, browser: Browser, live: LiveServer
) -> None:
    await register_with_key(page)
    await page.goto(CHAT)
    await ask(page, "the **secret** recipe")
    row = page.locator("#conversation-list .conversation").first
    await open_menu(page, row)
    await row.get_by_role("button", name="Share…").click()
    dialog = page.get_by_role("dialog", name=re.compile("^Share"))
    await dialog.get_by_role("button", name="Create link").click()
    link = dialog.get_by_label("Read-only link")
    await expect(link).to_have_value(re.compile("/share/"))
    url = await link.input_value()
    assert re.fullmatch(re.escape(live.url) + r"/share/[A-Za-z0-9_-]{22}", url), url
    await dialog.get_by_role("button", name="Close").last.click()
    await expect(row.locator(".shared-mark")).to_have_text("Shared")

    # A browser that never signed in reads it: the question as typed, the answer rendered.
    stranger = await browser.new_context(viewport=PHONE)
    try:
        shared = await stranger.new_page()
        opened = await shared.goto(url)
        assert opened is not None and opened.status == 200
        await expect(shared.locator(".message.user")).to_contain_text("the **secret** recipe")
        await expect(shared.locator(".message.assistant strong")).to_have_text("secret")
        assert "ada@example.com" not in await shared.content()
        width = await shared.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert width[0] <= width[1], width
        await screenshot(shared, "share-phone")

        # Revoked from the same dialog: the link is a 404 page from now on.
        await open_menu(page, row)
        await row.get_by_role("button", name="Shared link…").click()
        await dialog.get_by_role("button", name="Stop sharing").click()
        await expect(dialog.get_by_role("button", name="Create link")).to_be_visible()
        gone = await shared.goto(url)
        assert gone is not None and gone.status == 404
        await expect(shared.locator("body")).not_to_contain_text("secret")
    finally:
        await stranger.close()


async def open_sidebar(page: Page) -> None:
    """On a phone the sidebar sits behind its toggle."""
    toggle = page.locator("#sidebar-toggle")
    if await toggle.is_visible() and await toggle.get_attribute("aria-expanded") != "true":
        await toggle.click()


async def open_menu(page: Page, row: Locator) -> None:
    await open_sidebar(page)
    await row.locator("summary").click()
