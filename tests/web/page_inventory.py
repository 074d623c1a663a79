"""What a page would run, style or load from elsewhere: parsed from its HTML."""

from __future__ import annotations

from html.parser import HTMLParser


class PageInventory(HTMLParser):
    """What a page would run or style inline (a strict CSP refuses all of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self.style_attributes = 0
        self.style_tags = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and "src" not in values:
            self.inline_scripts += 1
        if tag == "style":
            self.style_tags += 1
        self.handlers += [name for name in values if name.startswith("on")]
        self.style_attributes += "style" in values
        for name in ("src", "href"):
            value = values.get(name) or ""
            if tag in ("script", "link", "img") and value.startswith(("http:", "https:", "//")):
                self.external.append(value)
