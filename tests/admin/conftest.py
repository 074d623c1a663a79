"""The browser fixtures of the web app's tests (the app served live, Chromium, a page that
fails a test on any console error), for the admin's browser test."""

from tests.web.conftest import (
    browser,
    console,
    live,
    live_settings,
    openai_upstream,
    page,
    upstream,
)

__all__ = ["browser", "console", "live", "live_settings", "openai_upstream", "page", "upstream"]
