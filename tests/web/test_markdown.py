"""Markdown to safe HTML, the committed highlight colours, and how numbers are shown."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from modelyard.web.markdown import MAX_MARKDOWN_CHARS, highlight_css, render_markdown
from modelyard.web.rendering import format_count, format_usd

STATIC = Path(__file__).resolve().parents[2] / "src" / "modelyard" / "web" / "static"


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"),
        (
            '<img src=x onerror="alert(1)">',
            "<p>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>\n",
        ),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>\n"),
        (
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "<p>[x](data:text/html;base64,PHNjcmlwdD4=)</p>\n",
        ),
        (
            "[site](https://example.com/a?b=1&c=2)",
            '<p><a href="https://example.com/a?b=1&amp;c=2" target="_blank" '
            'rel="noopener noreferrer nofollow">site</a></p>\n',
        ),
        (
            "![pixel](https://tracker.example/p.png)",
            '<p>!<a href="https://tracker.example/p.png" target="_blank" '
            'rel="noopener noreferrer nofollow">pixel</a></p>\n',
        ),
        ("**b** *i* ~~s~~ `c`", "<p><strong>b</strong> <em>i</em> <s>s</s> <code>c</code></p>\n"),
    ],
)
def test_markdown_never_passes_html_or_dangerous_links(text: str, html: str) -> None:
    assert render_markdown(text) == html


def test_code_blocks_are_highlighted_and_escaped() -> None:
    html = render_markdown("```python\nprint('<b>')\n```")
    assert html.startswith('<pre class="hl" data-lang="python"><code><span class="nb">print</span>')
    assert "&#39;&lt;b&gt;&#39;" in html or "'&lt;b&gt;'" in html
    unknown = render_markdown('```no-such-language" onclick="x\n<b>bold</b>\n```')
    assert unknown == (
        '<pre class="hl" data-lang="no-such-language&quot;"><code>&lt;b&gt;bold&lt;/b&gt;\n'
        "</code></pre>\n"
    )
    plain = render_markdown("```\n<i>\n```")
    assert plain == '<pre class="hl"><code>&lt;i&gt;\n</code></pre>\n'


def test_tables_render() -> None:
    html = render_markdown("| a | b |\n|---|---|\n| 1 | <x> |")
    assert "<table>" in html and "<td>&lt;x&gt;</td>" in html


def test_very_long_texts_are_cut_with_a_note() -> None:
    html = render_markdown("a" * (MAX_MARKDOWN_CHARS + 10))
    assert html.count("a") >= MAX_MARKDOWN_CHARS
    assert html.endswith('<p class="note">(cut: the message is too long to show in full)</p>\n')


def test_the_committed_highlight_css_is_up_to_date() -> None:
    css = (STATIC / "highlight.css").read_text()
    assert css == highlight_css(), (
        "regenerate it: python -m modelyard.web.markdown > src/modelyard/web/static/highlight.css"
    )
    assert ".hl .nb" in css and ':root[data-theme="dark"] .hl .nb' in css
    assert "@media (prefers-color-scheme: dark)" in css


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal(0), "$0.00"),
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("0.5"), "$0.50"),
        (Decimal("0.01234567"), "$0.0123"),
        (Decimal("0.00000585"), "$0.00000585"),
        ("0.15", "$0.15"),
        (0.6, "$0.60"),
    ],
)
def test_costs_are_shown_with_their_significant_digits(value: object, shown: str) -> None:
    assert format_usd(value) == shown  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "—"), (256, "256"), (16385, "16,385"), (128000, "128K"), (1047576, "1.05M")],
)
def test_token_counts_are_short(value: int | None, shown: str) -> None:
    assert format_count(value) == shown


@pytest.mark.parametrize("text", ["Stopped here:\n\n```python\n", "Stopped here:\n\n```\n  \n```"])
def test_a_fence_without_code_renders_as_nothing(text: str) -> None:
    """An answer stopped (or still streaming) right after its opening fence."""
    assert render_markdown(text) == "<p>Stopped here:</p>\n"


def test_an_unclosed_fence_with_code_is_a_code_block() -> None:
    html = render_markdown("```python\nprint(1")
    assert html.startswith('<pre class="hl" data-lang="python"><code>') and "print" in html
