"""CSV cells that a spreadsheet can never run as a formula (CSV/formula injection).

Spreadsheets read a cell starting with ``=``, ``+``, ``-`` or ``@`` as a formula, also
after leading spaces or line breaks, which they skip; a leading tab or carriage return
starts one too. Such a text cell gets a leading apostrophe, which shows it as text.
"""

from __future__ import annotations

__all__ = ["is_formula", "safe_cell"]

_FORMULA_START = ("=", "+", "-", "@")
_CONTROL_START = ("\t", "\r")


def is_formula(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula."""
    return text.startswith(_CONTROL_START) or text.lstrip().startswith(_FORMULA_START)


def safe_cell(text: str) -> str:
    """``text`` as a CSV cell shown as text (an apostrophe before a would-be formula)."""
    return "'" + text if is_formula(text) else text
