"""Discord payloads → the core's `ChatContext` and commands. No rules live here."""

from __future__ import annotations

import re

from core.chat.commands import ChatContext
from core.domain.approvals import Place

PLATFORM = "discord"


def context(user_id: int, channel_id: int | None) -> ChatContext:
    """Who acted, by Discord user id (the policy maps it to a person), and in which channel."""
    place = Place(platform=PLATFORM, channel=str(channel_id)) if channel_id is not None else None
    return ChatContext(platform=PLATFORM, account=str(user_id), place=place)


def without_bot_mention(content: str, bot_id: int | None) -> str:
    """`@signoff timeline` means `timeline`: drop a leading mention of the bot."""
    if bot_id is None:
        return content
    return re.sub(rf"^\s*<@!?{bot_id}>\s*", "", content)
