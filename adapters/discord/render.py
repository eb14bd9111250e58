"""The core's neutral `Card` as a Discord embed plus a view of persistent buttons.

Rendering only: every sentence comes from the core. Discord's limits (embed field and
message lengths) are enforced here by truncating or splitting, never by rewording.

Discord renders markdown in embed titles, descriptions, field values and message content, so
every such text is neutralised (`neutral`) the way Slack's renderer escapes `<`, `>` and `&`: a
reason, a comment, an alert's description or the LLM's rationale shows exactly as typed, never
as a masked link, a heading, a spoiler or a mention. The one construct kept is a balanced inline
code span (how the core quotes commands and ids): Discord shows its content literally.
"""

from __future__ import annotations

import re

import discord

from adapters.discord.translate import COMMENT_INPUT, CONFIRM_INPUT, CONFIRM_WORD, REASON_INPUT, custom_id_word
from adapters.discord.views import SignoffButton, custom_id
from core.chat.cards import Button, ButtonAction, Card, Mentions
from core.chat.text import clip
from core.domain.approvals import MAX_COMMENT_LENGTH

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
MODAL_TITLE_LIMIT = 45

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


# Kept as they are: a balanced inline code span (its content is shown literally), and a bare URL, which
# Discord links before any markdown, so a backslash inside it would end up in the link. The URL pattern
# is Discord's own: what it matches is exactly what Discord consumes as the link.
_CODE = r"`[^`\n]+`"
_URL = r"https?://[^\s<]+[^<.,:;\"')\]\s]"
# Escaped: a backslash (so a typed one cannot undo ours), emphasis, strike, spoiler and code marks, the
# `[` of a masked link, the `<` of a mention / channel / timestamp / emoji, and @everyone / @here.
_MARKS = r"[\\*_~|`]|\[|<(?=[@#:/]|t:|a:|id:)|@(?=everyone\b|here\b)"
_WITH_CODE = re.compile(f"(?P<kept>{_CODE}|{_URL})|{_MARKS}")
_WITHOUT_CODE = re.compile(f"(?P<kept>{_URL})|{_MARKS}")
# Line starts that make a heading (`#`, `-#`), a quote (`>`), a list (`-`, `+`, `1.`).
_LINE_START = re.compile(r"^([ \t]*)(?:(#{1,3}|-#|>{1,3}|[-+])|(\d+)(\.))(?=[ \t])", re.MULTILINE)


def neutral(text: str, *, keep_code: bool = True) -> str:
    """`text` with Discord's markdown escaped by backslashes (which Discord removes when it renders).

    No kept construct spans a line, so a neutral text split at line ends stays neutral.
    `keep_code=False` escapes code spans and every `[` too: for a piece of a text that may be cut anywhere.
    """
    def escape(match: re.Match[str]) -> str:
        mark = match.group(0)
        if match.group("kept") is not None:
            return mark
        if mark == "[" and keep_code and "](" not in text[match.end():]:
            return mark  # `[alice]`: no link can follow, so it stays as it is
        return "\\" + mark

    pattern = _WITH_CODE if keep_code else _WITHOUT_CODE
    return _LINE_START.sub(_line_start, pattern.sub(escape, text))


def _line_start(match: re.Match[str]) -> str:
    indent, marker, number, dot = match.groups()
    if marker is not None:
        return f"{indent}\\{marker}"
    return f"{indent}{number}\\{dot}"


def neutral_clipped(text: str, limit: int) -> str:
    """Neutralised and within `limit`: cut before escaping, so no escape (or code span) is cut in half."""
    out = neutral(text)
    cut = min(len(text), limit)
    while len(out) > limit:
        out = neutral(clip(text, max(cut, 1)))
        cut -= max(len(out) - limit, 1)
    return out


def message_pieces(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Message content: neutralised, in pieces Discord accepts. A line too long for one message is cut
    wherever it must be, so its code spans are escaped too rather than kept."""
    # Neutralised whole (a masked link may span lines), then any line too long is redone on its own.
    lines = neutral(text).split("\n")
    for index, (line, raw) in enumerate(zip(lines, text.split("\n"), strict=True)):
        if len(line) > limit:
            lines[index] = neutral(raw, keep_code=False)
    return split_text("\n".join(lines), limit)


def colour_of(card: Card) -> discord.Colour:
    return discord.Colour(COLOURS.get(card.colour, COLOURS["grey"]))


def card_embed(card: Card) -> discord.Embed:
    description = neutral_clipped(card.text, DESCRIPTION_LIMIT - 64)
    if card.progress is not None:
        description = f"{description}\n**Signatures** {card.progress.bar}".strip()
    embed = discord.Embed(
        title=neutral_clipped(card.title, TITLE_LIMIT),
        description=description or None,
        colour=colour_of(card),
    )
    # Discord rejects an embed over 6000 characters in total: fields that do not fit are
    # dropped from the end (the outcome field is last but short; long ones are clipped first).
    budget = EMBED_TOTAL_LIMIT - len(embed.title or "") - len(embed.description or "") - len(card.footer)
    for field in card.fields[:MAX_FIELDS]:
        name = neutral_clipped(field.label, FIELD_NAME_LIMIT) or "\u200b"
        value = neutral_clipped(field.value, FIELD_VALUE_LIMIT) or "\u200b"
        if len(name) + len(value) > budget:
            break
        budget -= len(name) + len(value)
        embed.add_field(name=name, value=value, inline=field.inline)
    if card.footer:  # footers show no markdown at all: signoff's own text, as it is
        embed.set_footer(text=clip(card.footer, FOOTER_LIMIT))
    return embed


def button_item(button: Button) -> SignoffButton:
    return SignoffButton(
        custom_id_word(button.action), button.value, label=clip(button.label, BUTTON_LABEL_LIMIT),
        style=BUTTON_STYLES.get(button.style, discord.ButtonStyle.secondary),
    )


def comment_modal(request_id: str) -> discord.ui.Modal:
    """The form behind "Approve with comment…": one paragraph, at most MAX_COMMENT_LENGTH characters.

    Stopped before it is sent, so discord.py does not keep it in its per-process modal store: the
    submission is matched on its custom_id by the client (like the buttons' DynamicItems), so a modal
    opened before a restart still signs after it.
    """
    modal = discord.ui.Modal(title=clip(f"Approve {request_id} with a comment", MODAL_TITLE_LIMIT),
                             custom_id=custom_id(custom_id_word(ButtonAction.approve_comment), request_id),
                             timeout=None)
    modal.add_item(discord.ui.TextInput(
        label="Comment", custom_id=COMMENT_INPUT, style=discord.TextStyle.paragraph, required=True,
        max_length=MAX_COMMENT_LENGTH, placeholder="Shown on the card beside your name",
    ))
    modal.stop()
    return modal


def confirm_modal(request_id: str, name: str) -> discord.ui.Modal:
    """The form behind Approve… on a `confirm = true` request: one input, the target's name.

    Stopped before it is sent, like the comment form: the submission is matched on its custom_id.
    """
    modal = discord.ui.Modal(title=clip(f"Sign {request_id}", MODAL_TITLE_LIMIT),
                             custom_id=custom_id(CONFIRM_WORD, request_id), timeout=None)
    modal.add_item(discord.ui.TextInput(label=clip(f"Type {name} to sign", 45), custom_id=CONFIRM_INPUT,
                                        required=True, max_length=200))
    modal.stop()
    return modal


def dispute_modal(request_id: str) -> discord.ui.Modal:
    """The Dispute button's form (a break glass review): the reason, required; matched like `comment_modal`."""
    modal = discord.ui.Modal(title=clip(f"Dispute the break glass on {request_id}", MODAL_TITLE_LIMIT),
                             custom_id=custom_id(ButtonAction.dispute, request_id), timeout=None)
    modal.add_item(discord.ui.TextInput(label="Reason", custom_id=REASON_INPUT, style=discord.TextStyle.paragraph,
                                        required=True, max_length=500, placeholder="Why it was not justified"))
    modal.stop()
    return modal


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


def _odd_backslashes(text: str) -> bool:
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


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
            cut = limit
            if _odd_backslashes(line[:cut]):
                cut -= 1  # never between an escaping backslash and the character it escapes
            pieces.append(line[:cut])
            line = line[cut:]
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
