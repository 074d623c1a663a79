"""Hostile input for the fuzzers: strings, numbers and their encodings in forms and URLs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

__all__ = [
    "HOSTILE_NUMBERS",
    "HOSTILE_TEXT",
    "form_bytes",
    "fuzz_settings",
    "hostile_text",
    "hostile_value",
    "json_bytes",
    "path_part",
]

HOSTILE_NUMBERS = [
    "-1",
    "0",
    "1e309",
    "NaN",
    "-Infinity",
    "0x10",
    "1_000",
    "٣",  # an Arabic-Indic digit: isdigit(), but not a number the database takes
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "9" * 400,
    "9" * 5000,  # more digits than int() converts
    "1.5",
    "1e-400",
]
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "%00",
    "\ud800",  # an unpaired surrogate
    "x\udfffy",
    "\ufeff",
    "\u202egpt",
    "\U0001f600",
    "../../etc/passwd",
    "/etc/passwd",
    "//evil.example",
    "http://evil.example/x",
    "javascript:alert(1)",
    "' OR 1=1 --",
    '"; DROP TABLE users; --',
    "{{7*7}}",
    "{% raw %}",
    "<script>alert(1)</script>",
    "\r\nSet-Cookie: x=1",
    "{not json",
    '{"a": [' * 50,
    "@",
    "a" * 64 + "@" + "b" * 250 + ".com",
    "x" * 5000,
    "x" * 200_000,
    *HOSTILE_NUMBERS,
]

hostile_text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=200))
hostile_value = st.one_of(
    hostile_text,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def fuzz_settings(examples: int) -> Any:
    """Hypothesis settings for a fuzzer: repeatable, no deadline, no example database."""
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )


def json_bytes(value: Any) -> bytes:
    """``value`` as JSON, unpaired surrogates written as ``\\udXXX`` escapes."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def form_bytes(fields: dict[str, str]) -> bytes:
    """An URL-encoded form; a surrogate goes out as its (invalid) UTF-8 bytes."""
    return urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()


def path_part(value: str) -> str:
    """``value`` percent-encoded for one URL path segment (never empty)."""
    return quote(value, safe="", errors="surrogatepass") or "%20"
