"""signoff's card buttons as `DynamicItem`s: matched on `custom_id` alone, so they survive restarts.

A `custom_id` is `signoff:<action>:<value>` (`signoff:approve:R-7`, later `signoff:rate:R-7:4`).
discord.py matches the template against every click, on any message, in any process that
registered the class with `add_dynamic_items`, so an old card's buttons reach a new process.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import discord

from adapters.discord.translate import CONFIRM_WORD
from core.chat.cards import CONFIRM_BUTTON_LABEL

CUSTOM_ID_PREFIX = "signoff"
CUSTOM_ID_LIMIT = 100  # Discord's limit
TEMPLATE = r"signoff:(?P<action>[a-z][a-z0-9_]*):(?P<value>.+)"


def custom_id(action: str, value: str) -> str:
    cid = f"{CUSTOM_ID_PREFIX}:{action}:{value}"
    if len(cid) > CUSTOM_ID_LIMIT:
        # A longer id would be refused by Discord for the whole message; the core's values are short ids.
        raise ValueError(f"custom_id longer than {CUSTOM_ID_LIMIT} characters: {cid[:40]}…")
    return cid


@runtime_checkable
class ClickSink(Protocol):
    """What a button hands its click to (the signoff client); a Protocol to keep this module import-light."""

    def on_button(self, interaction: discord.Interaction[Any], action: str, value: str) -> None: ...


class SignoffButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TEMPLATE):
    def __init__(
        self, action: str, value: str, *, label: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
    ) -> None:
        super().__init__(discord.ui.Button(label=label or action.title(), style=style,
                                           custom_id=custom_id(action, value)))
        self.action = action
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /,
    ) -> SignoffButton:
        # Keep the clicked button's look; only the custom_id carries meaning.
        label = getattr(item, "label", None)
        style = getattr(item, "style", discord.ButtonStyle.secondary)
        return cls(match["action"], match["value"], label=label, style=style)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        # discord.py runs this in a task of its own; the client moves the work into its supervised
        # task group at once and returns, so nothing outlives a shutdown unsupervised.
        client = interaction.client
        if isinstance(client, ClickSink):
            # Approve… (an ellipsis: a form follows) on a `confirm = true` card asks for the target's name:
            # the modal must be the click's first answer, so the client learns it before acknowledging. A click
            # whose button is not known (no message in the interaction) is checked the same way first.
            label = self.item.label
            action = CONFIRM_WORD if self.action == "approve" and label in (CONFIRM_BUTTON_LABEL, None) \
                else self.action
            client.on_button(interaction, action, self.value)
