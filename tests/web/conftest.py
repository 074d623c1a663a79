"""Fixtures for the web app: the application served on 127.0.0.1 (SQLite in the test's data
directory, or PostgreSQL), a fake OpenAI standing in for api.openai.com, one headless
Chromium per test session and, per test, a fresh browser context whose page fails the test
on any console error or uncaught exception.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import Database
from tests.helpers import login, make_user
from tests.web.live import LiveServer, SlowChatOpenAI

#: The OpenAI key the tests' user sets in the profile; a canary no page may ever show.
USER_KEY = "sk-web-user-canary-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
#: Milliseconds a browser action or expectation may take before the test fails.
TIMEOUT_MS = 8000


@pytest.fixture
def upstream() -> Iterator[SlowChatOpenAI]:
    with SlowChatOpenAI(keys={USER_KEY}) as fake:
        yield fake


@pytest.fixture
def openai_upstream(
    upstream: SlowChatOpenAI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> SlowChatOpenAI:
    """The fake that stands in for api.openai.com: the app's OpenAI base URL points at it,
    so the key a user sets in the profile is sent there."""
    monkeypatch.setattr(settings, "provider_base_urls", {"openai": upstream.base_url})
    return upstream


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"usage_flush_seconds": 0.1})


@pytest.fixture
def live(live_settings: Settings, openai_upstream: SlowChatOpenAI) -> Iterator[LiveServer]:
    """The app on a free port of 127.0.0.1, lifespan included."""
    settings = live_settings.model_copy(
        update={"provider_base_urls": {"openai": openai_upstream.base_url}}
    )
    with LiveServer(create_app(settings, system_keys={})) as server:
        yield server


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        await chromium.close()


@dataclass
class Console:
    """What the page logged as errors; a test may allow some (an expected 400, …)."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
async def page(browser: Browser, live: LiveServer, console: Console) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=live.url, viewport={"width": 1280, "height": 860}, color_scheme="light"
    )
    context.set_default_timeout(TIMEOUT_MS)
    tab = await context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_page_error(error: Error) -> None:
        console.errors.append(f"uncaught: {error}")

    tab.on("console", on_console)
    tab.on("pageerror", on_page_error)
    yield tab
    await context.close()
    assert console.unexpected() == [], "the browser console showed errors"


async def screenshot(page: Page, name: str) -> None:
    """Save ``test-artifacts/screenshots/<name>.png`` (the whole page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def csrf(
    client: httpx.AsyncClient, database: Database, openai_upstream: SlowChatOpenAI
) -> str:
    """A signed-in user (``chat@example.com``) with an OpenAI key answered by the fake; the
    session's CSRF token."""
    await make_user(database, "chat@example.com")
    token = await login(client, "chat@example.com")
    response = await client.patch(
        "/v2/users/me/api-key",
        json={"provider": "openai", "api_key": USER_KEY},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200
    return token
