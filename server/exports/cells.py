"""Text cells made safe for spreadsheets: no formula injection (OWASP CSV injection), no XML-illegal characters."""

from __future__ import annotations

import re

# A spreadsheet may read a cell starting with one of these as a formula (=, +, -, @) or shift it so that the
# next character does (tab, carriage return): the OWASP CSV injection list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Control characters XML 1.0 cannot hold (tab, LF and CR it can); openpyxl refuses them, Excel chokes on them.
ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def neutralise(text: str) -> str:
    """Prefix a single quote to text a spreadsheet could run as a formula; other text is returned unchanged."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_text(text: str) -> str:
    """Drop illegal control characters, then neutralise: stripping first cannot uncover a leading '='."""
    return neutralise(ILLEGAL.sub("", text))
