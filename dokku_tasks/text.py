"""Text that is safe to put on a terminal line.

A message can carry characters that come from the user's files (an app.json script, a Procfile
command, a path): a NUL, an escape sequence, a carriage return that would overwrite the line.
:func:`printable` shows each such character as an escape, so what reaches the terminal is what
was there, visibly, and the line stays one line.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

#: Characters that are not control characters but still move or reorder text on a terminal:
#: the Unicode line and paragraph separators and the bidirectional overrides and isolates.
_INVISIBLE_CONTROLS = frozenset(
    "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


#: The escapes Python's ``repr`` uses too; every other character is shown by its code.
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control character shown as an escape: ``\\x00``, ``\\n``, ``\\u2028``.

    Control characters are the C0 range (``\\x00``-``\\x1f``), DEL and the C1 range
    (``\\x7f``-``\\x9f``), the line and paragraph separators U+2028 and U+2029, and the
    bidirectional controls U+202A-U+202E and U+2066-U+2069.  Tab, newline and carriage return
    are shown as ``\\t``, ``\\n`` and ``\\r``, as ``repr`` shows them.  Everything else,
    non-ASCII letters and emoji included, stays as it is; so does a backslash.  Characters in
    ``keep`` (say ``"\\t"``) are left alone too.
    """
    if text.isprintable():
        return text
    return "".join(
        _escape(char)
        if char not in keep and (unicodedata.category(char) == "Cc" or char in _INVISIBLE_CONTROLS)
        else char
        for char in text
    )
