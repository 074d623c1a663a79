"""Titles derived from a conversation's first message, and message text extraction."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.conversations.service import DEFAULT_TITLE, derive_title, message_text


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Hello there", "Hello there"),
        ("  \n\n  Padded   first  line  \nsecond line", "Padded first line"),
        ("", DEFAULT_TITLE),
        ("   \n\t\n", DEFAULT_TITLE),
        ("x" * 60, "x" * 60),
        (
            "Explain how the garbage collector of CPython handles reference cycles in detail",
            "Explain how the garbage collector of CPython handles…",
        ),
        ("word " * 11 + "tail", "word " * 11 + "tail"),
        ("word " * 13 + "tail", "word " * 11 + "word…"),
        ("a" * 100, "a" * 60 + "…"),
        ("ab " + "c" * 100, "ab " + "c" * 57 + "…"),
        (
            "Short, then punctuation-heavy words: alpha, beta, gamma, delta, epsilon",
            "Short, then punctuation-heavy words: alpha, beta, gamma…",
        ),
    ],
)
def test_derive_title(text: str, title: str) -> None:
    derived = derive_title(text)
    assert derived == title
    assert len(derived) <= 61


def test_message_text_of_content_parts() -> None:
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": "What is in"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this picture?"},
    ]
    assert message_text(parts) == "What is in\n[image_url]\nthis picture?"
    assert message_text(None) == "" and message_text("plain") == "plain"
