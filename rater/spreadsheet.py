"""Cells a spreadsheet would run as a formula, and how rater writes and reads them back (pure).

Exports quote such cells (OWASP's advice against CSV injection); importers read an export back
by removing exactly that quote, so a value survives the round trip whatever it starts with.
"""

from __future__ import annotations

import re

# = + - @ and their full-width forms ＝ ＋ － ＠ (spreadsheets read those as formulas too).
FORMULA_CHARACTERS = "=+-@\uff1d\uff0b\uff0d\uff20"
# A cell a spreadsheet would run: a formula character after any whitespace or line breaks
# (Python's Unicode whitespace, so also no-break and ideographic spaces), or a leading tab or
# carriage return -- in each case after any run of single quotes, so that a quote already in
# front of such a cell gets one more and removing exactly one quote gives the value back.
_NEEDS_QUOTE = re.compile(rf"'*(?:[\t\r]|\s*[{re.escape(FORMULA_CHARACTERS)}])")


def neutralise(text: str) -> str:
    """Prefix a single quote to text a spreadsheet would treat as a formula.

    ``=SUM(A1)``, `` =1``, ``\\n@x``, ``＝1`` and ``\\tx`` get a quote, and so does text that
    already starts with quotes before such a cell (``'=1`` -> ``''=1``), so that
    :func:`unneutralise` (drop one leading quote where what follows would itself get one) gives
    every value back exactly.
    """
    return "'" + text if _NEEDS_QUOTE.match(text) else text


def unneutralise(text: str) -> str:
    """The value :func:`neutralise` wrote ``text`` for (importers read exports back with it)."""
    return text[1:] if text.startswith("'") and _NEEDS_QUOTE.match(text, 1) else text
