"""Text from outside (the user's code, torch, a file, the socket) made safe to show (STYLE.md habit 23).

Such text is shown literally: front ends never parse it as markup (the TUI wraps it in a Rich
``Text`` with :func:`tui.format.literal`), and its control characters are written as visible
escapes, so an ANSI sequence in an exception message, a run name or a class name can neither
recolour nor clear the terminal, nor move the cursor, nor reorder the line (a bidi override).
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters but newline and tab: C0, DEL, C1, and the bidi marks, embeddings, overrides and isolates."""


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``str(text)`` with every control character but newline and tab written as its escape
    (``\\x1b[31m`` shows as the ten characters ``\\x1b[31m``); brackets are left as they are."""
    return _CONTROL.sub(_visible, str(text))
