"""Cells of CSV files meant for spreadsheets."""

from __future__ import annotations

# OWASP's rule against CSV injection: a spreadsheet runs a cell that starts with one of these
# as a formula, so such a cell gets a leading single quote and is shown as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# A byte-order mark, so that spreadsheet programs read the Chinese names as UTF-8.
BOM = "\ufeff"


def csv_text(value: str) -> str:
    """A cell of text that came from outside (ids, names): never read as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value
