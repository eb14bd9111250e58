"""Text from outside (chat, the API, alerts, an LLM) made safe to store and show.

PostgreSQL refuses NUL in text, and no database stores a lone UTF-16 surrogate (JSON's `"\\ud800"` decodes
to one): both are cleaned on every input path, so one odd character never turns a good request into an error.
"""

from __future__ import annotations

import re
import unicodedata

_SURROGATES = re.compile("[\ud800-\udfff]")
# What a terminal, a chat client or a browser would obey instead of showing: C0 and C1 controls (ESC starts
# an ANSI sequence, a newline forges a line), the line and paragraph separators, and the bidirectional
# controls (U+202E turns text around, U+2066-U+2069 isolate). Zero-width joiners stay: emoji need them.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_UNSHOWABLE_BUT_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                                   "\u2066-\u2069]")
TRUNCATED = "…[truncated]"


def clean_text(text: str) -> str:
    """`text` without NUL characters, lone surrogates replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _SURROGATES.sub("\ufffd", text)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with a marker when it was cut."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, lines: bool = False) -> str:
    """`text` as it may be shown to a person: every control, direction or invisible formatting character is
    written as its escape (`\\x1b`, `\\u202e`), so it is seen instead of obeyed. `lines=True` keeps newlines,
    for a multi-line field of a card; a one-line context (a timeline line, a terminal) escapes them too."""
    return (_UNSHOWABLE_BUT_LINES if lines else _UNSHOWABLE).sub(_escape, text)


def name_problem(name: str, field: str) -> str | None:
    """Why `name` cannot be a person's name (it would show as something else, or as nothing), or None."""
    bad = sorted({c for c in name if _UNSHOWABLE.match(c) or unicodedata.category(c) in ("Cc", "Cf", "Co", "Cn")})
    if bad:
        shown = ", ".join(f"U+{ord(c):04X}" for c in bad[:3])
        return (f"`{field}` holds control, direction or invisible characters ({shown}), which would show as "
                "something else; use letters, digits, spaces and punctuation, like `alice` or `deploy-bot`.")
    if not name.strip():
        return f"`{field}` is only spaces; give a name people can read, like `alice` or `deploy-bot`."
    return None
