"""Discord payloads → the core's `ChatContext` and commands. No rules live here."""

from __future__ import annotations

import re

from core.chat.commands import ChatContext
from core.domain.approvals import Place

PLATFORM = "discord"


def context(user_id: int, channel_id: int | None, guild_id: int | None = None) -> ChatContext:
    """Who acted, by Discord user id (the policy maps it to a person), in which channel and server
    (`dm` for a direct message, which belongs to no server)."""
    place = Place(platform=PLATFORM, channel=str(channel_id)) if channel_id is not None else None
    workspace = str(guild_id) if guild_id is not None else "dm"
    return ChatContext(platform=PLATFORM, account=str(user_id), place=place, workspace=workspace)


def without_bot_mention(content: str, bot_id: int | None) -> str:
    """`@signoff timeline` means `timeline`: drop a leading mention of the bot."""
    if bot_id is None:
        return content
    return re.sub(rf"^\s*<@!?{bot_id}>\s*", "", content)
