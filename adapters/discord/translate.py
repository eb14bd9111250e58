"""Discord payloads → the core's command language and `ChatContext`. No rules live here."""

from __future__ import annotations

import re

from core.chat.handlers import ChatContext
from core.domain.approvals import Place

PLATFORM = "discord"

_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


def context(user_id: int, channel_id: int | None, display_name: str | None = None) -> ChatContext:
    """Who acted, by Discord user id (the policy maps it to a person), and in which channel."""
    place = Place(platform=PLATFORM, channel=str(channel_id)) if channel_id is not None else None
    return ChatContext(platform=PLATFORM, account=str(user_id), place=place, display_name=display_name)


def quoted(value: str) -> str:
    """One value for `key="…"` in the core's shlex-based syntax, whatever the person typed.

    The core turns smart quotes into plain ones before splitting, so they are turned into plain
    ones here first and then escaped like every other double quote.
    """
    plain = value.translate(_SMART_QUOTES).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{plain}"'


def request_text(action: str, risk: str | None = None, incident: str | None = None,
                 reason: str | None = None) -> str:
    """`/signoff request` options as the command text the core parses."""
    parts = ["request", action.strip()]
    if risk:
        parts.append(f"risk={risk}")
    if incident and incident.strip():
        parts.append(f"incident={quoted(incident.strip())}")
    if reason and reason.strip():
        parts.append(f"reason={quoted(reason.strip())}")
    return " ".join(parts)


def id_command(name: str, subject: str) -> str:
    """`status R-1`, `timeline INC-3`, `cancel R-2`: a command taking one id (the core validates it)."""
    return f"{name} {subject.strip()}"


def resolve_text(incident: str, score: int) -> str:
    return f"resolve {incident.strip()} score={score}"


def without_bot_mention(content: str, bot_id: int | None) -> str:
    """`@signoff timeline` means `timeline`: drop a leading mention of the bot."""
    if bot_id is None:
        return content
    return re.sub(rf"^\s*<@!?{bot_id}>\s*", "", content)
