"""Discord payloads → the core's `ChatContext` and commands. No rules live here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from core.chat.cards import ButtonAction
from core.chat.commands import ChatContext
from core.domain.approvals import Place

PLATFORM = "discord"

# The word a button's action has in its custom_id, where it differs (docs/design.md: `signoff:comment:<id>`).
_CUSTOM_ID_WORDS: dict[str, str] = {ButtonAction.approve_comment: "comment"}
_ACTIONS_BY_WORD = {word: action for action, word in _CUSTOM_ID_WORDS.items()}
# The text input of the comment modal.
COMMENT_INPUT = "comment"
# The typed confirmation (`confirm = true`): the Approve… button's word, its modal's `signoff:confirm:<id>`,
# and the modal's input for the target's name.
CONFIRM_WORD = "confirm"
CONFIRM_INPUT = "name"
REASON_INPUT = "reason"  # the dispute modal's (a break glass review)


def custom_id_word(action: str) -> str:
    """`approve_comment` → `comment`; other actions are their own word."""
    return _CUSTOM_ID_WORDS.get(action, action)


def button_action(word: str) -> str:
    """A custom_id's action word back to the core's button action (`comment` → `approve_comment`)."""
    return _ACTIONS_BY_WORD.get(word, word)


def modal_values(data: Any) -> dict[str, str]:
    """A modal submission's `custom_id → value` (rows of text inputs, or labels around them)."""
    components = data.get("components") if isinstance(data, dict) else None
    return {str(c["custom_id"]): str(c.get("value") or "") for c in _inputs(components)}


def _inputs(components: Any) -> Iterator[dict[str, Any]]:
    for component in components if isinstance(components, list) else ():
        if not isinstance(component, dict):
            continue
        if component.get("type") == 4 and "custom_id" in component:
            yield component
        yield from _inputs(component.get("components"))
        if isinstance(component.get("component"), dict):
            yield from _inputs([component["component"]])


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
