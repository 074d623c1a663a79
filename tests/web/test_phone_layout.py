"""Every page of the app fits a phone (390x844) and a laptop (1366x900): nothing is wider
than the viewport, and on phones the main navigation sits behind a menu button, every
link (Profile included) reachable once it is open. Saves screenshots (chat, models,
training at both sizes) to ``test-artifacts/screenshots/``, and to ``docs/screenshots/``
with ``MODELYARD_UPDATE_SCREENSHOTS=1`` (the committed ones)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import SCREENSHOTS, Console
from tests.web.flows import ask, chat_prompt, csrf_headers, register_with_key

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
#: Every page of the web app (the staff panel, SQLAdmin's, is not part of it).
PAGES = [
    "/",
    "/language-models",
    "/language-models/gpt-4o-mini",
    "/profile",
    "/usage",
    "/training",
    "/training/jobs/999999",
]
SIGNED_OUT_PAGES = ["/login", "/register"]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE_DOCS = os.environ.get("MODELYARD_UPDATE_SCREENSHOTS") == "1"
#: What the screenshots show, by name.
SHOWN = {"models": "/language-models", "training": "/training"}


async def overflow(page: Page) -> dict[str, Any]:
    """The document's width against the viewport's, and the widest elements that stick out."""
    result: dict[str, Any] = await page.evaluate(
        """() => {
          const width = window.innerWidth;
          const wide = [...document.querySelectorAll('body *')]
            .filter((node) => node.getBoundingClientRect().right > width + 0.5)
            .slice(0, 5)
            .map((node) => {
              const right = Math.round(node.getBoundingClientRect().right);
              return `${node.tagName}.${node.className} ${right}`;
            });
          return {scroll: document.documentElement.scrollWidth, inner: width, wide};
        }"""
    )
    return result


async def assert_fits(page: Page, path: str) -> None:
    await page.goto(path)
    await page.wait_for_load_state("networkidle")
    measured = await overflow(page)
    assert measured["scroll"] <= measured["inner"], f"{path} is wider than the page: {measured}"


async def fill_the_pages(page: Page) -> None:
    """What makes pages wide: a conversation with a table, an API token, a dataset."""
    headers = await csrf_headers(page)
    token = await page.request.post("/v2/tokens", data={"name": "laptop " * 12}, headers=headers)
    assert token.ok, await token.text()
    dataset = await page.request.post(
        "/v2/datasets",
        multipart={
            "file": {
                "name": "reviews-with-a-rather-long-file-name.csv",
                "mimeType": "text/csv",
                "buffer": b"text,label\n"
                + b"".join(b"good %d,pos\nbad %d,neg\n" % (i, i) for i in range(10)),
            }
        },
        headers=headers,
    )
    assert dataset.ok, await dataset.text()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_no_page_is_wider_than_the_viewport(
    page: Page, viewport: dict[str, int], console: Console
) -> None:
    console.allow(r"status of 404 .*/training/jobs/999999")
    await page.set_viewport_size(viewport)
    for path in SIGNED_OUT_PAGES:
        await assert_fits(page, path)
    await register_with_key(page)
    await fill_the_pages(page)
    await page.goto("/language-models/gpt-4o-mini")
    await ask(
        page,
        "intro\n\n## A heading\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        + "long " * 80,
    )
    conversation = page.url.removeprefix(page.url.split("/language-models")[0])
    for path in [*PAGES, conversation]:
        await assert_fits(page, path)
    size = "phone" if viewport is PHONE else "desktop"
    folder = DOCS_SCREENSHOTS if UPDATE_DOCS else SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in {"chat": conversation, **SHOWN}.items():
        await page.goto(path)
        if name == "chat":
            await chat_prompt(page)
        await page.wait_for_load_state("networkidle")
        await page.screenshot(path=str(folder / f"{name}-{size}.png"))


async def test_phones_get_a_menu_button_with_every_link(page: Page) -> None:
    await page.set_viewport_size(PHONE)
    await register_with_key(page)
    menu = page.get_by_role("button", name="Menu")
    profile = page.locator(".main-nav").get_by_role("link", name="Profile")
    await expect(menu).to_be_visible()
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await expect(profile).to_be_hidden()
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await expect(profile).to_be_in_viewport(ratio=1)
    await profile.click()
    await expect(page).to_have_url(re.compile(r"/profile$"))
    # Escape closes it again, focus back on the button.
    await menu.click()
    await page.keyboard.press("Escape")
    await expect(profile).to_be_hidden()
    await expect(menu).to_be_focused()

    # On a laptop the links are shown and the button is not.
    await page.set_viewport_size(DESKTOP)
    await expect(menu).to_be_hidden()
    await expect(profile).to_be_visible()
