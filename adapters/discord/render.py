"""The core's neutral `Card` as a Discord embed plus a view of persistent buttons.

Rendering only: every sentence comes from the core. Discord's limits (embed field and
message lengths) are enforced here by truncating or splitting, never by rewording.
"""

from __future__ import annotations

import discord

from adapters.discord.views import SignoffButton
from core.chat.cards import Button, Card, Mentions
from core.chat.text import clip

MESSAGE_LIMIT = 2000  # characters of message content
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
MAX_FIELDS = 25
EMBED_TOTAL_LIMIT = 6000
THREAD_NAME_LIMIT = 100
BUTTON_LABEL_LIMIT = 80
BUTTONS_PER_ROW = 5
MAX_ROWS = 5

# The core's colours are semantic; these are Discord's own palette values for them.
COLOURS: dict[str, int] = {
    "green": 0x57F287,
    "yellow": 0xFEE75C,
    "orange": 0xE67E22,
    "red": 0xED4245,
    "grey": 0x95A5A6,
    "gray": 0x95A5A6,
    "blue": 0x5865F2,
}

# The core marks the affirmative button "primary"; on Discord a green button reads as "approve".
BUTTON_STYLES: dict[str, discord.ButtonStyle] = {
    "primary": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
    "secondary": discord.ButtonStyle.secondary,
}


def colour_of(card: Card) -> discord.Colour:
    return discord.Colour(COLOURS.get(card.colour, COLOURS["grey"]))


def card_embed(card: Card) -> discord.Embed:
    description = card.text
    if card.progress is not None:
        description = f"{description}\n**Signatures** {card.progress.bar}".strip()
    embed = discord.Embed(
        title=clip(card.title, TITLE_LIMIT),
        description=clip(description, DESCRIPTION_LIMIT) or None,
        colour=colour_of(card),
    )
    # Discord rejects an embed over 6000 characters in total: fields that do not fit are
    # dropped from the end (the outcome field is last but short; long ones are clipped first).
    budget = EMBED_TOTAL_LIMIT - len(embed.title or "") - len(embed.description or "") - len(card.footer)
    for field in card.fields[:MAX_FIELDS]:
        name = clip(field.label, FIELD_NAME_LIMIT) or "\u200b"
        value = clip(field.value, FIELD_VALUE_LIMIT) or "\u200b"
        if len(name) + len(value) > budget:
            break
        budget -= len(name) + len(value)
        embed.add_field(name=name, value=value, inline=field.inline)
    if card.footer:
        embed.set_footer(text=clip(card.footer, FOOTER_LIMIT))
    return embed


def button_item(button: Button) -> SignoffButton:
    return SignoffButton(
        button.action, button.value, label=clip(button.label, BUTTON_LABEL_LIMIT),
        style=BUTTON_STYLES.get(button.style, discord.ButtonStyle.secondary),
    )


def card_view(card: Card) -> discord.ui.View | None:
    """The card's buttons, or None for a card without any (terminal states): no components at all."""
    if not card.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for index, button in enumerate(card.buttons[: BUTTONS_PER_ROW * MAX_ROWS]):
        item = button_item(button)
        item.row = index // BUTTONS_PER_ROW
        view.add_item(item)
    return view


def thread_name(card: Card) -> str:
    """`R-7 · rollout restart deployment/api -n prod`: the title without its status icon, which would go stale."""
    _, key, rest = card.title.partition(card.key)
    name = (key + rest) if key else card.title
    return clip(name.strip() or card.key, THREAD_NAME_LIMIT)


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Message content in pieces Discord accepts, cut at line ends where possible (timelines grow long)."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for whole_line in text.splitlines(keepends=True):
        line = whole_line
        while len(line) > limit:  # one very long line: hard cut
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            pieces.append(current)
            current = ""
        current += line
    if current:
        pieces.append(current)
    return [piece.rstrip("\n") or "\u200b" for piece in pieces]


def _snowflakes(ids: tuple[str, ...]) -> list[int]:
    # Discord ids are numbers; anything else in the policy is never written into `<…>`.
    return [int(i) for i in ids if i.isascii() and i.isdigit()]


def mention_text(mentions: Mentions | None) -> str:
    """`<@&222…> <@111…>`: roles, then users."""
    if not mentions:
        return ""
    roles = [f"<@&{r}>" for r in _snowflakes(mentions.groups)]
    users = [f"<@{u}>" for u in _snowflakes(mentions.users)]
    return " ".join(roles + users)


def allowed_mentions(mentions: Mentions | None) -> discord.AllowedMentions:
    """Exactly the roles and users the message names may be pinged; never @everyone or @here."""
    if not mentions:
        return discord.AllowedMentions.none()
    return discord.AllowedMentions(
        everyone=False, replied_user=False,
        users=[discord.Object(u) for u in _snowflakes(mentions.users)],
        roles=[discord.Object(r) for r in _snowflakes(mentions.groups)],
    )
