"""Approve with a comment on Discord, on the wire: the "Approve with comment…" button answers with a modal
(interaction response type 9), its submission signs with the comment, and the card shows it beside the
signer. FakeDiscord drives an unmodified discord.py client; nothing of ours is mocked.

Why: the seed's signatures carry a comment (issue 13, item 8). The plain Approve button stays one click,
and every rule of signing applies to the submission exactly as to the button.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.domain.approvals import RequestStatus, signed_digest
from core.domain.events import EventType
from testkit.fakes.discord import FakeDiscord
from testkit.support.discord import (
    ALICE,
    BOB,
    CAROL,
    EVE,
    MALLORY,
    answered,
    click,
    command,
    custom_ids,
    description,
    discord_service,
    followup_text,
    requested,
    wait_card,
)

COMMENT = "signoff:comment:R-1"


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        for uid, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (MALLORY, "mallory"), (EVE, "eve")):
            server.add_member(uid, name)
        yield server


async def open_form(fake: FakeDiscord, user: str, message_id: str) -> dict[str, Any]:
    """Click "Approve with comment…": the one answer is the modal; returns the click's payload."""
    sent = await fake.click(user, message_id, COMMENT)
    await fake.wait_for(lambda: fake.interaction_responses(sent["id"]) or None)
    [reply] = fake.interaction_responses(sent["id"])
    assert (reply.kind, reply.type) == ("callback", 9), reply
    return sent


async def refused_form(fake: FakeDiscord, user: str, message_id: str) -> str:
    """Click "Approve with comment…" when signing would be refused: told privately, no modal."""
    sent = await fake.click(user, message_id, COMMENT)
    await fake.wait_for(lambda: fake.interaction_responses(sent["id"]) or None)
    [reply] = fake.interaction_responses(sent["id"])
    assert (reply.kind, reply.type, reply.ephemeral) == ("callback", 4, True), reply
    return str(reply.json["data"]["content"])


async def submit(fake: FakeDiscord, opened: dict[str, Any], comment: str, **kwargs: Any) -> str:
    sent = await fake.submit_modal(opened["id"], {"comment": comment}, **kwargs)
    replies = await answered(fake, sent)
    assert (replies[0].type, replies[0].ephemeral, replies[1].ephemeral) == (5, True, True)
    return followup_text(replies)


def signed_by(message: dict[str, Any]) -> str:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}["Signed by"]


async def test_the_comment_button_opens_a_modal_and_its_submission_signs(fake: FakeDiscord,
                                                                        database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, _ = await requested(fake, app, risk="high")
        assert custom_ids(card) == ["signoff:approve:R-1", COMMENT, "signoff:reject:R-1"]
        labels = [c["label"] for row in card["components"] for c in row["components"]]
        assert labels == ["Approve", "Approve with comment…", "Reject"]

        opened = await open_form(fake, BOB, card["id"])
        modal = fake.modal(opened["id"])
        assert modal["custom_id"] == COMMENT and "R-1" in modal["title"]
        [row] = modal["components"]
        [text_input] = row["components"]
        assert (text_input["custom_id"], text_input["style"], text_input["max_length"]) == ("comment", 2, 500)

        comment = "checked the dashboards, **p99** is [fine](https://evil.example)"
        text = await submit(fake, opened, comment)
        assert text.startswith("✍️ You signed R-1 (▰▱ 1/2)"), text
        card = await wait_card(fake, "R-1", lambda m: "▰▱ 1/2" in description(m))
        # Beside the signer, escaped like every user text.
        assert signed_by(card) == r"bob (discord): “checked the dashboards, \*\*p99\*\* is \[fine](https://evil.example)”"

        request = await app.service.get("R-1")
        assert [(s.person, s.via, s.comment) for s in request.signatures] == [("bob", "discord", comment)]
        [signed] = [e for e in await app.service.timeline("R-1") if e.type is EventType.signed]
        assert signed.detail == f"via discord: {comment}" and signed.digest == signed_digest(request)

        # The plain Approve button is still one click: a defer, then the signature.
        assert "quorum reached" in await click(fake, CAROL, card["id"], "signoff:approve:R-1")
        final = await wait_card(fake, "R-1", lambda m: "SUCCEEDED" in description(m))
        assert signed_by(final).splitlines() == [
            r"bob (discord): “checked the dashboards, \*\*p99\*\* is \[fine](https://evil.example)”",
            "carol (discord)"]
        assert (await app.service.get("R-1")).status is RequestStatus.succeeded


async def test_a_comment_too_long_is_refused_and_nothing_is_signed(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, _ = await requested(fake, app, risk="high")
        opened = await open_form(fake, BOB, card["id"])
        with pytest.raises(ValueError, match="max_length"):  # Discord's own client stops it…
            await fake.submit_modal(opened["id"], {"comment": "x" * 501})
        text = await submit(fake, opened, "x" * 501, crafted=True)  # …and signoff refuses a crafted one
        assert text == "A comment is at most 500 characters; yours has 501. Shorten it and sign again."
        assert (await app.service.get("R-1")).signatures == ()


async def test_signing_rules_apply_to_the_button_and_to_the_submission(fake: FakeDiscord,
                                                                       database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, _ = await requested(fake, app, risk="high")
        # Refused before any typing, in the words the Approve button would get.
        assert (await refused_form(fake, ALICE, card["id"])).startswith("You asked for R-1, so you can't sign it")
        assert (await refused_form(fake, MALLORY, card["id"])).startswith("Only members of sre may sign")
        assert "I don't know who you are" in await refused_form(fake, EVE, card["id"])

        # The submission is checked again when it arrives: things change while a person types.
        bob = await open_form(fake, BOB, card["id"])
        assert (await click(fake, BOB, card["id"], "signoff:approve:R-1")).startswith("✍️ You signed R-1")
        assert (await submit(fake, bob, "me again")).startswith("You already signed R-1")
        # A hand-made submission by someone the policy refuses is refused (and noted) like a click.
        crafted = await submit(fake, bob, "let me in", user_id=MALLORY, crafted=True)
        assert crafted.startswith("Only members of sre may sign")
        carol = await open_form(fake, CAROL, card["id"])
        assert (await command(fake, ALICE, "cancel", id="R-1"))
        assert "can no longer be signed" in await submit(fake, carol, "too late")

        request = await app.service.get("R-1")
        assert [(s.person, s.comment) for s in request.signatures] == [("bob", None)]
        refused = [e.actor for e in await app.service.timeline("R-1") if e.type is EventType.refused]
        assert "mallory" in refused and "alice" not in refused  # opening a form is not an attempt to sign


async def test_a_modal_opened_before_a_restart_still_signs_after_it(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, _ = await requested(fake, app, risk="high")
        opened = await open_form(fake, BOB, card["id"])
    async with discord_service(fake, database_url) as app:  # a new client: the modal lives on custom_id
        text = await submit(fake, opened, "typed across a deploy")
        assert text.startswith("✍️ You signed R-1"), text
        assert [s.comment for s in (await app.service.get("R-1")).signatures] == ["typed across a deploy"]
