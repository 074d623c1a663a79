"""axe-core (from npm, installed by ``make browser`` into ``tests/web/axe``) run in a page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

__all__ = ["AXE", "FAILING", "violations"]

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts that fail the check.
FAILING = {"serious", "critical"}


async def violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (axe evaluated in
    the page, past any content security policy that would refuse a script tag), once the
    page's CSS transitions have finished: colours measured mid-transition are neither the old
    theme's nor the new one's."""
    await page.evaluate(
        "() => Promise.all(document.getAnimations()"
        ".filter(a => a instanceof CSSTransition).map(a => a.finished.catch(() => null)))"
    )
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text() + "\n;undefined")
    result: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(" ".join(node["target"]) for node in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in FAILING
    ]
