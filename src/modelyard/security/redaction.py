"""Masking of secrets in text, and the logging filter that applies it to every record.

Two things are masked: every value registered as a known secret (keys decrypted by this
process, the admin password, …) and anything shaped like a provider key or a bearer
token (``sk-…``, ``sk-ant-…``, ``hf_…``, ``gsk_…``, ``AIza…``, ``myd_…`` and the value of
an ``Authorization:`` header).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

__all__ = ["MASK", "RedactingFilter", "SecretRegistry", "redact", "secret_registry"]

MASK = "****"

_KEY_SHAPES = re.compile(
    r"""
    (?P<prefix>sk-ant-|sk-|hf_|gsk_|AIza|myd_|xai-|pplx-)[A-Za-z0-9_\-]{8,}
    """,
    re.VERBOSE,
)
_AUTH_HEADER = re.compile(
    r"(?P<prefix>(?:authorization|x-api-key|api-key)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?)"
    r"[^\s\"',;]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<prefix>\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)

#: Registered secrets shorter than this are not masked (they would mask ordinary words).
MIN_SECRET_LENGTH = 6


class SecretRegistry:
    """Known secret values to mask wherever they appear; thread-safe and resettable."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str | None) -> None:
        """Remember ``value`` as a secret (ignored when empty or very short)."""
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                self._values.add(value)
                self._pattern = None

    def update(self, values: Iterable[str | None]) -> None:
        for value in values:
            self.add(value)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def mask(self, text: str) -> str:
        with self._lock:
            if not self._values:
                return text
            if self._pattern is None:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(value) for value in ordered))
            pattern = self._pattern
        return pattern.sub(MASK, text)


secret_registry = SecretRegistry()


def redact(text: str, registry: SecretRegistry | None = None) -> str:
    """Return ``text`` with known secrets and key-shaped strings masked."""
    text = (registry or secret_registry).mask(text)
    text = _AUTH_HEADER.sub(lambda match: match["prefix"] + MASK, text)
    text = _BEARER.sub(lambda match: match["prefix"] + MASK, text)
    return _KEY_SHAPES.sub(lambda match: match["prefix"] + MASK, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, its arguments and its exception text."""

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        super().__init__()
        self._registry = registry

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message, self._registry)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self._registry)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self._registry)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._registry)
        return True
