"""Every page of the web app checked with axe-core (installed from npm by ``make browser``)
at phone and laptop sizes, in the light and the dark theme: no serious or critical
violation. The chat is checked with a conversation and its settings dialog open, and a
conversation's share page too."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser, Page, ViewportSize

from tests.web.accessibility import AXE, violations
from tests.web.conftest import TIMEOUT_MS
from tests.web.flows import ask, csrf_headers, register_with_key
from tests.web.live import LiveServer

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
SIGNED_OUT = ["/login", "/register"]
SIGNED_IN = [
    "/",
    "/language-models",
    "/profile",
    "/usage",
    "/training",
    "/training/jobs/999999",
]


async def check(page: Page, path: str | None, found: dict[str, list[str]]) -> None:
    if path is not None:
        await page.goto(path)
    await page.wait_for_load_state("networkidle")
    problems = await violations(page)
    if problems:
        found[path or page.url] = problems


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_no_page_has_serious_accessibility_violations(
    browser: Browser, live: LiveServer, viewport: ViewportSize, scheme: str
) -> None:
    assert AXE.is_file(), "axe-core is missing: run `make browser`"
    # The app's CSP refuses injected scripts; only this check's context bypasses it.
    context = await browser.new_context(
        base_url=live.url,
        viewport=viewport,
        color_scheme=scheme,  # type: ignore[arg-type]
        bypass_csp=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        await _check_every_page(await context.new_page())
    finally:
        await context.close()


async def _check_every_page(page: Page) -> None:
    found: dict[str, list[str]] = {}
    for path in SIGNED_OUT:
        await check(page, path, found)
    await register_with_key(page)
    for path in SIGNED_IN:
        await check(page, path, found)
    await page.goto("/language-models/gpt-4o-mini")
    await ask(page, "A table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint(1)\n```")
    await check(page, None, found)
    await page.get_by_role("button", name="Conversation settings").click()
    await check(page, None, found)
    conversation = page.url.rsplit("c=", 1)[1]
    shared = await page.request.post(
        f"/v2/conversations/{conversation}/share", headers=await csrf_headers(page)
    )
    assert shared.ok, await shared.text()
    await check(page, (await shared.json())["path"], found)
    assert found == {}, json.dumps(found, indent=1)
