"""Durations as a policy file writes them: `30m`, `1h`, `2h30m`, `45s`, `1d`."""

from __future__ import annotations

import re
from datetime import timedelta

# The longest duration a policy may write at all (retention).
MAX_DURATION = timedelta(days=3650)


def _duration_seconds(text: str) -> int:
    """`30m`, `1h`, `2h30m`, `45s`, `1d` as seconds (a Python int: no overflow, however long it is written)."""
    match = re.fullmatch(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*", text)
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"`{text}` is not a duration; write it like 30m, 1h, 2h30m or 45s")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_duration(text: str) -> timedelta:
    """`30m`, `1h`, `2h30m`, `45s`, `1d`, at most MAX_DURATION."""
    total = _duration_seconds(text)
    if total > MAX_DURATION.total_seconds():
        raise ValueError(f"`{text.strip()}` is longer than any duration signoff takes (at most "
                         f"{format_duration(MAX_DURATION)})")
    return timedelta(seconds=total)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2])
