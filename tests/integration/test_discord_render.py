"""Pure pieces of the Discord adapter: Card → embed within Discord's limits, command text the core
parses back exactly, and message splitting. No I/O.

Why: Discord refuses a whole message when one field is too long, and a reason typed with quotes
must reach the core unchanged; both would otherwise surface only as a failed delivery or a refusal.
"""

from __future__ import annotations

import discord
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.discord.render import (
    EMBED_TOTAL_LIMIT,
    FIELD_VALUE_LIMIT,
    MESSAGE_LIMIT,
    card_embed,
    card_view,
    split_text,
    thread_name,
)
from adapters.discord.translate import without_bot_mention
from adapters.discord.views import SignoffButton, custom_id
from core.chat.cards import Button, Card, CardField, Progress
from core.chat.commands import Request
from core.chat.parser import from_options


def card(**changes: object) -> Card:
    base = Card(
        key="R-7", title="⏳ R-7 · kubectl rollout restart deployment/api -n prod", text="PENDING · high risk",
        colour="orange", fields=(CardField(label="Reason", value="slow", inline=False),),
        progress=Progress(current=1, required=2),
        buttons=(Button(action="approve", label="Approve", value="R-7", style="primary"),
                 Button(action="reject", label="Reject", value="R-7", style="danger")),
        footer="signoff · R-7",
    )
    return base.model_copy(update=changes)


async def test_card_renders_as_an_embed_with_persistent_buttons() -> None:
    embed = card_embed(card())
    assert embed.title == "⏳ R-7 · kubectl rollout restart deployment/api -n prod"
    assert embed.description == "PENDING · high risk\n**Signatures** ▰▱ 1/2"
    assert embed.colour == discord.Colour(0xE67E22)
    assert [(f.name, f.value, f.inline) for f in embed.fields] == [("Reason", "slow", False)]
    view = card_view(card())
    assert view is not None and view.timeout is None
    items = [i for i in view.children if isinstance(i, SignoffButton)]
    assert [(i.custom_id, i.item.style) for i in items] == [
        ("signoff:approve:R-7", discord.ButtonStyle.success), ("signoff:reject:R-7", discord.ButtonStyle.danger)]
    assert card_view(card(buttons=())) is None  # terminal: no components at all
    assert thread_name(card()) == "R-7 · kubectl rollout restart deployment/api -n prod"


async def test_embed_stays_within_discords_limits() -> None:
    fields = tuple(CardField(label=f"F{i}", value="x" * 2000) for i in range(30))
    embed = card_embed(card(fields=fields, title="T" * 300))
    payload = embed.to_dict()
    assert len(payload["title"]) == 256 and payload["title"].endswith("…")
    assert all(len(f["value"]) <= FIELD_VALUE_LIMIT for f in payload["fields"])
    assert len(embed) <= EMBED_TOTAL_LIMIT  # discord.py's own measure of an embed's size


def test_custom_ids_are_bounded() -> None:
    assert custom_id("rate", "R-7:4") == "signoff:rate:R-7:4"
    with pytest.raises(ValueError, match="100"):
        custom_id("approve", "R-" + "9" * 100)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200))
def test_a_reason_reaches_the_core_unchanged(reason: str) -> None:
    reason = reason.strip()
    smart: dict[str, str | int | None] = {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"}
    plain = reason.translate(str.maketrans(smart))
    command = from_options("rollout restart deployment/api -n prod", "high", "INC-7", reason)
    assert isinstance(command, Request) and command.action == "rollout restart deployment/api -n prod"
    assert (str(command.risk), command.incident) == ("high", "INC-7")
    assert command.reason == (plain or None)


def test_long_text_is_split_at_line_ends() -> None:
    lines = [f"#{i} 12:00:00 signed [someone]: a line of timeline" for i in range(200)]
    pieces = split_text("\n".join(lines))
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces) and len(pieces) > 1
    assert "\n".join(pieces) == "\n".join(lines)
    assert split_text("x" * 4500) == ["x" * 2000, "x" * 2000, "x" * 500]
    assert split_text("short") == ["short"]


def test_a_leading_mention_of_the_bot_is_dropped() -> None:
    assert without_bot_mention("<@42> timeline", 42) == "timeline"
    assert without_bot_mention("<@!42>status", 42) == "status"
    assert without_bot_mention("ask <@42> later", 42) == "ask <@42> later"


@pytest.mark.parametrize(("text", "shown"), [
    ("[Click here](https://evil.example/x)", r"\[Click here](https://evil.example/x)"),
    ("**bold** __u__ ~~s~~ ||spoiler|| *i* _i_", r"\*\*bold\*\* \_\_u\_\_ \~\~s\~\~ \|\|spoiler\|\| \*i\* \_i\_"),
    ("<@123> <#456> <t:1:R> @everyone @here", r"\<@123> \<#456> \<t:1:R> \@everyone \@here"),
    ("# h1\n## h2\n-# small\n> quote\n>>> rest\n- item\n+ item\n  3. third", "\\# h1\n\\## h2\n\\-# small\n"
     "\\> quote\n\\>>> rest\n\\- item\n\\+ item\n  3\\. third"),
    ("a back\\slash and `kept code` and `unbalanced", r"a back\\slash and `kept code` and \`unbalanced"),
    ("see https://dash.example/d/a_b_c?x=1 now", "see https://dash.example/d/a_b_c?x=1 now"),
    ("R-7 is -n prod, 2 > 1", "R-7 is -n prod, 2 > 1"),
])
def test_markdown_is_neutralised(text: str, shown: str) -> None:
    from adapters.discord.render import neutral
    assert neutral(text) == shown


def test_neutral_text_is_clipped_and_split_without_breaking_an_escape() -> None:
    from adapters.discord.render import message_pieces, neutral_clipped
    clipped = neutral_clipped("*" * 300, 100)
    assert len(clipped) <= 100 and clipped.endswith("…") and not clipped.rstrip("…").endswith("\\\\*")
    pieces = message_pieces("`" + "x" * 2500 + "` " + "*" * 1500)
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces)
    # A line cut in two cannot keep a code span (the cut would open one): every backtick is escaped.
    assert all(p.count("`") == p.count("\\`") for p in pieces)
    assert all(not p.startswith("*") for p in pieces)  # never cut between a backslash and its character


async def test_the_comment_button_and_its_modal() -> None:
    from adapters.discord.render import button_item, comment_modal
    from adapters.discord.translate import button_action, modal_values
    item = button_item(Button(action="approve_comment", label="Approve with comment…", value="R-7"))
    assert item.custom_id == "signoff:comment:R-7" and button_action("comment") == "approve_comment"
    assert button_action("approve") == "approve"
    modal = comment_modal("R-7")
    assert modal.is_finished()  # kept out of discord.py's per-process store: matched on custom_id instead
    assert modal.to_dict() == {
        "custom_id": "signoff:comment:R-7", "title": "Approve R-7 with a comment",
        "components": [{"type": 1, "components": [{
            "type": 4, "style": 2, "label": "Comment", "custom_id": "comment", "required": True,
            "max_length": 500, "placeholder": "Shown on the card beside your name"}]}]}
    rows = [{"type": 1, "components": [{"type": 4, "custom_id": "comment", "value": "lgtm"}]}]
    labelled = [{"type": 18, "component": {"type": 4, "custom_id": "comment", "value": "lgtm"}}]
    assert modal_values({"components": rows}) == modal_values({"components": labelled}) == {"comment": "lgtm"}
    assert modal_values(None) == {}
