"""The neutral Card (and plain texts) as Slack Block Kit.

Every string that reaches a `mrkdwn` field is escaped: a reason or a name typed by a person
must never turn into `<!channel>`, a user mention or a disguised link. Lengths are cut to
Slack's Block Kit limits so a long reason degrades into `…` instead of `invalid_blocks`
(which the outbox would retry in vain).
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.chat.cards import Button, ButtonAction, Card, CardField, Mentions
from core.chat.text import clip
from core.domain.approvals import MAX_COMMENT_LENGTH

Block = dict[str, Any]

ACTION_PREFIX = "signoff_"
ACTIONS_BLOCK_ID = "signoff_actions"
# The comment modal: its callback_id is the button's action_id (docs/design.md), its one input below.
COMMENT_CALLBACK_ID = ACTION_PREFIX + ButtonAction.approve_comment
COMMENT_BLOCK_ID = "signoff_comment"
COMMENT_ACTION_ID = "comment"
# The typed confirmation (`confirm = true`): callback_id `signoff_confirm`, private_metadata the request id,
# one plain-text input: the target's name.
CONFIRM_CALLBACK_ID = "signoff_confirm"
CONFIRM_BLOCK_ID = "signoff_confirm"
CONFIRM_ACTION_ID = "name"

# Block Kit limits (Slack's reference): exceeding any of them is `invalid_blocks`.
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_PER_SECTION = 10
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
CONTEXT_TEXT_MAX = 2000
MAX_BLOCKS = 50
# Modal limits: title, submit and close at most 24 characters each.
VIEW_TITLE_MAX = 24
# What a modal shows under a field when signoff refuses the submission (a sentence or two).
VIEW_ERROR_MAX = 1000
# chat.postMessage takes up to 40,000 characters of `text`; stay clear of it.
MESSAGE_TEXT_MAX = 39_000
# Notification / fallback text for a card (what a phone shows).
FALLBACK_MAX = 300

# Block Kit has no colour of its own; a coloured square next to the state carries the card's colour.
COLOUR_MARK = {
    "green": "🟩",
    "yellow": "🟨",
    "orange": "🟧",
    "red": "🟥",
    "grey": "⬜",
}

_STYLES = {"primary": "primary", "danger": "danger"}  # Slack's default button style is "secondary"


def escape(text: str) -> str:
    """Slack's mrkdwn control characters; `&` first so the others are not escaped twice."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escaped(text: str, limit: int) -> str:
    """Escape, then fit into `limit` without cutting an `&amp;` entity in half."""
    out = escape(text)
    cut = limit
    while len(out) > limit:
        # Clip the raw text (never inside an entity) and escape again; entities make it longer,
        # so shrink by the overshoot until it fits.
        cut -= len(out) - limit
        out = escape(clip(text, max(cut, 1)))
    return out


def action_id(action: str, index: int | None = None) -> str:
    """`approve` → `signoff_approve` (docs/design.md §4: the ids Slack sends back on a click).

    Slack rejects a message whose buttons share an action_id (`invalid_blocks`), so when one
    action has several buttons (the 1-5 rating) each gets `.<n>` appended; the value tells
    them apart, and `action_name()` drops the suffix again.
    """
    return ACTION_PREFIX + action + (f".{index}" if index is not None else "")


def action_name(action_id: str) -> str | None:
    """`signoff_rate.4` → `rate`; None for an action_id that is not signoff's."""
    if not action_id.startswith(ACTION_PREFIX):
        return None
    name = action_id[len(ACTION_PREFIX):].split(".", 1)[0]
    return name or None


def _mrkdwn(text: str, limit: int) -> Block:
    return {"type": "mrkdwn", "text": escaped(text, limit)}


def _field_text(field: CardField, limit: int) -> Block:
    label = escape(field.label)
    body = escaped(field.value, limit - len(label) - 3)
    return {"type": "mrkdwn", "text": f"*{label}*\n{body}"}


def _button(button: Button, index: int | None) -> Block:
    element: Block = {
        "type": "button",
        "action_id": action_id(button.action, index),
        "text": {"type": "plain_text", "text": clip(button.label, BUTTON_TEXT_MAX), "emoji": True},
        "value": clip(button.value, BUTTON_VALUE_MAX),
    }
    style = _STYLES.get(button.style)
    if style is not None:
        element["style"] = style
    return element


def status_line(card: Card) -> str:
    """The line under the title: state, colour and the signature progress bar."""
    mark = COLOUR_MARK.get(card.colour, COLOUR_MARK["grey"])
    parts = [f"{mark} *{escaped(card.text, SECTION_TEXT_MAX // 2)}*"] if card.text else [mark]
    if card.progress is not None:
        parts.append(f"Signatures: {card.progress.bar}")
    return clip("\n".join(parts), SECTION_TEXT_MAX)


def card_blocks(card: Card) -> list[Block]:
    """Header, state and progress, the fields (inline ones side by side), buttons, footer."""
    blocks: list[Block] = [
        {"type": "header", "block_id": "signoff_title",
         "text": {"type": "plain_text", "text": clip(card.title, HEADER_MAX), "emoji": True}},
        {"type": "section", "block_id": "signoff_status", "text": {"type": "mrkdwn", "text": status_line(card)}},
    ]
    paged = mention_text(card.mentions)
    if paged:
        blocks.append({"type": "section", "block_id": "signoff_mentions",
                       "text": {"type": "mrkdwn", "text": f"Can sign: {paged}"}})
    inline: list[Block] = []

    def flush_inline() -> None:
        if inline:
            blocks.append({"type": "section", "block_id": f"signoff_fields_{len(blocks)}", "fields": list(inline)})
            inline.clear()

    for field in card.fields:
        if field.inline:
            inline.append(_field_text(field, FIELD_TEXT_MAX))
            if len(inline) == FIELDS_PER_SECTION:
                flush_inline()
        else:
            flush_inline()
            blocks.append({"type": "section", "block_id": f"signoff_field_{len(blocks)}",
                           "text": _field_text(field, SECTION_TEXT_MAX)})
    flush_inline()
    tail: list[Block] = []
    if card.buttons:
        # Terminal states come with no buttons: the block disappears and nobody can click any more.
        actions = [b.action for b in card.buttons]
        elements = [_button(b, i if actions.count(b.action) > 1 else None) for i, b in enumerate(card.buttons, 1)]
        tail.append({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": elements[:25]})
    if card.footer:
        tail.append({"type": "context", "block_id": "signoff_footer",
                     "elements": [_mrkdwn(card.footer, CONTEXT_TEXT_MAX)]})
    # Never drop the buttons or the footer to make room: cut the fields instead.
    room = MAX_BLOCKS - len(tail)
    return blocks[:room] + tail


def card_text(card: Card) -> str:
    """The `text` Slack shows in notifications and to screen readers alongside the blocks.

    A first post leads with its mentions: Slack pages from a new message's `text`.
    """
    parts = [card.title]
    if card.text:
        parts.append(card.text)
    if card.progress is not None:
        parts.append(card.progress.bar)
    body = escaped(" · ".join(parts), FALLBACK_MAX)
    paged = mention_text(card.mentions)
    return f"Can sign: {paged} · {body}" if paged else body


# Slack ids are upper-case letters and digits; anything else in the policy is never written into `<…>`.
_SLACK_ID = re.compile(r"[A-Z0-9]{2,32}")


def mention_text(mentions: Mentions) -> str:
    """`<!subteam^S0SRE> <@U0ALICE>`: user groups by their id, people by their member id."""
    groups = [f"<!subteam^{g}>" for g in mentions.groups if _SLACK_ID.fullmatch(g)]
    users = [f"<@{u}>" for u in mentions.users if _SLACK_ID.fullmatch(u)]
    return " ".join(groups + users)


def with_mentions(text: str, mentions: Mentions | None) -> str:
    """A thread or channel message's mrkdwn, led by the mentions it pages."""
    body = message_text(text) if text else ""
    paged = mention_text(mentions) if mentions else ""
    return f"{paged} {body}".strip() if paged else body


def comment_view(request_id: str, channel: str | None) -> Block:
    """The modal behind "Approve with comment…" (views.open). `private_metadata` carries what the
    submission needs back: the request, and the channel for the private answer."""
    metadata = {"request": request_id, "channel": channel}
    return {
        "type": "modal",
        "callback_id": COMMENT_CALLBACK_ID,
        "private_metadata": json.dumps(metadata),
        "title": {"type": "plain_text", "text": clip(f"Approve {request_id}", VIEW_TITLE_MAX)},
        "submit": {"type": "plain_text", "text": "Sign"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input",
            "block_id": COMMENT_BLOCK_ID,
            "label": {"type": "plain_text", "text": "Comment, shown on the card beside your name"},
            "element": {"type": "plain_text_input", "action_id": COMMENT_ACTION_ID, "multiline": True,
                        "max_length": MAX_COMMENT_LENGTH},
        }],
    }


def confirm_view(request_id: str, name: str) -> Block:
    """The modal behind Approve… on a request whose level asks for the target's name (views.open)."""
    return {
        "type": "modal",
        "callback_id": CONFIRM_CALLBACK_ID,
        "private_metadata": request_id,
        "title": {"type": "plain_text", "text": clip(f"Sign {request_id}", VIEW_TITLE_MAX)},
        "submit": {"type": "plain_text", "text": "Sign"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": CONFIRM_BLOCK_ID,
             "label": {"type": "plain_text", "text": clip(f"Type {name} to sign", VIEW_TITLE_MAX * 5)},
             "element": {"type": "plain_text_input", "action_id": CONFIRM_ACTION_ID, "max_length": 200}},
        ],
    }


def message_text(text: str) -> str:
    """A plain message (thread reply, private answer) as mrkdwn: escaped, within Slack's limit."""
    return escaped(text, MESSAGE_TEXT_MAX)
