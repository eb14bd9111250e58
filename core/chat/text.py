"""Text helpers every chat surface shares: plain quotes, cleaning and clipping, in one place."""

from __future__ import annotations

from core.domain.text import clean_text, visible

__all__ = ["SMART_QUOTES", "clean_text", "clip", "plain_quotes", "visible"]

# Phones and chat clients turn "…" into curly quotes; the command syntax means the plain ones.
SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


def plain_quotes(text: str) -> str:
    return text.translate(SMART_QUOTES)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
