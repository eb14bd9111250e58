"""Text from outside (chat, the API, alerts, an LLM) made safe to store and show.

PostgreSQL refuses NUL in text, and no database stores a lone UTF-16 surrogate (JSON's `"\\ud800"` decodes
to one): both are cleaned on every input path, so one odd character never turns a good request into an error.
"""

from __future__ import annotations

import re

_SURROGATES = re.compile("[\ud800-\udfff]")
TRUNCATED = "…[truncated]"


def clean_text(text: str) -> str:
    """`text` without NUL characters, lone surrogates replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _SURROGATES.sub("\ufffd", text)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with a marker when it was cut."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED
