"""Spreadsheet safety for the CSV files the app writes (the audit log, blocklists).

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets (file names such as `=HYPERLINK(...)` would run): it is
written with a leading apostrophe, which spreadsheets show as text. No Django here.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> str:
    """The value as CSV text that no spreadsheet evaluates."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
