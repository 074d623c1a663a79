"""The admin in Chromium: the dashboard fits a laptop (1366x900) and a phone (390x844)
with nothing wider than the viewport, and follows the app's theme (the system's, then the
toggle's choice, remembered across the app and the admin). Saves screenshots to
``test-artifacts/screenshots/``; the dark dashboard's, at both sizes, to ``docs/screenshots/``
instead with ``MODELYARD_UPDATE_SCREENSHOTS=1`` (the committed ones)."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from modelyard.accounts.users import create_user
from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.db.models import UsageRecord
from tests.web.accessibility import violations
from tests.web.conftest import SCREENSHOTS, screenshot
from tests.web.flows import PASSWORD

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
LONG_MODEL = "organisation-with-a-long-name/a-fine-tuned-model-with-an-even-longer-name-v2"
DARK_BG = "rgb(15, 17, 21)"
LIGHT_BG = "rgb(246, 247, 249)"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE_DOCS = os.environ.get("MODELYARD_UPDATE_SCREENSHOTS") == "1"


async def seed(settings: Settings) -> None:
    database = create_database(settings)
    try:
        async with database.sessions() as session:
            user = await create_user(
                session, email="boss@example.com", password=PASSWORD, is_staff=True
            )
            for model, cost, status in (
                ("gpt-4o-mini", "0.25", 200),
                ("gpt-4o-mini", "0.25", 200),
                (LONG_MODEL, "12345.678", 200),
                (LONG_MODEL, "0", 500),
            ):
                session.add(
                    UsageRecord(
                        user_id=user.id,
                        endpoint="chat",
                        model=model,
                        cost_usd=Decimal(cost),
                        status=status,
                    )
                )
            await session.commit()
    finally:
        await database.dispose()


async def sign_in(page: Page) -> None:
    await page.goto("/login")
    await page.get_by_label("E-mail").fill("boss@example.com")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def fits(page: Page) -> None:
    measured = await page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert measured["scroll"] <= measured["inner"], measured


async def background(page: Page) -> str:
    color: str = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    return color


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["laptop", "phone"])
async def test_the_dashboard_fits_and_follows_the_theme(
    page: Page, live_settings: Settings, size: dict[str, int]
) -> None:
    await seed(live_settings)
    await page.set_viewport_size(size)
    await sign_in(page)
    await page.goto("/admin/")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("#figure-requests .ma-figure-value")).to_have_text("4")
    await expect(page.locator("#figure-cost .ma-figure-value")).to_have_text("$12,346.18")
    await expect(page.locator("#top-models tbody tr")).to_have_count(2)
    back = page.get_by_role("link", name="Back to modelyard")
    await expect(back).to_be_visible()
    await fits(page)
    assert await violations(page) == []  # axe-core: nothing serious or critical

    # Light, as the system asks (the page fixture's colour scheme); dark from the system.
    html = page.locator("html")
    await expect(html).to_have_attribute("data-bs-theme", "light")
    assert await background(page) == LIGHT_BG
    await page.emulate_media(color_scheme="dark")
    await expect(html).to_have_attribute("data-bs-theme", "dark")
    assert await background(page) == DARK_BG
    # The toggle's choice wins over the system's, and the app remembers it too.
    toggle = page.locator("[data-theme-toggle]")
    await toggle.click()
    await expect(html).to_have_attribute("data-bs-theme", "light")
    assert await background(page) == LIGHT_BG
    await expect(toggle).to_have_attribute("aria-label", "Switch to dark theme")
    await toggle.click()
    await expect(html).to_have_attribute("data-theme", "dark")
    assert await background(page) == DARK_BG
    await fits(page)
    assert await violations(page) == []
    name = "laptop" if size is DESKTOP else "phone"
    folder = DOCS_SCREENSHOTS if UPDATE_DOCS else SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    await toggle.blur()  # no focus ring in the picture
    await page.screenshot(path=str(folder / f"admin-dashboard-{name}-dark.png"), full_page=True)

    # The menu's Training group opens in place.
    menu = page.get_by_role("navigation", name="Admin")
    await (
        menu.get_by_role("button", name="Training")
        .or_(menu.get_by_role("link", name="Training", exact=True))
        .click()
    )
    await expect(menu.get_by_role("link", name="Training jobs")).to_be_visible()
    await fits(page)

    await page.goto("/admin/usage-record/list")
    await expect(html).to_have_attribute("data-bs-theme", "dark")
    await expect(page.get_by_role("columnheader", name="Cost (USD)")).to_be_visible()
    await fits(page)  # the wide table scrolls inside its card
    await screenshot(page, f"admin-usage-{name}-dark")
    await back.click()
    await expect(page).to_have_url(re.compile(r"/language-models$|/$"))
    await expect(html).to_have_attribute("data-theme", "dark")
