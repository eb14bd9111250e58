"""Approve with a comment on Slack, on the wire: the `signoff_approve_comment` button opens a modal
(`views.open` with the click's `trigger_id`), its `view_submission` signs with the comment, and the
card shows it beside the signer. Signed requests to our real POST /slack/events (and Socket Mode
envelopes), the real services, and the fake Slack Web API.

Why: the seed's signatures carry a comment (issue 13, item 8). The plain Approve button stays one
click, and every rule of signing applies to the submission exactly as to the button.
"""

from __future__ import annotations

import json

import pytest

from core.domain.approvals import RequestStatus, signed_digest
from core.domain.events import EventType
from testkit.support.slack import (
    ALICE,
    BOB,
    CAROL,
    MALLORY,
    RESTART_API,
    TEAM_POLICY,
    SlackWorld,
    buttons,
    card_text,
    slack_world,
)

JSON = dict[str, object]


def signed_by(world: SlackWorld) -> str:
    for block in world.card("R-1").get("blocks") or []:
        text = str((block.get("text") or {}).get("text", ""))
        if text.startswith("*Signed by*"):
            return text.removeprefix("*Signed by*\n")
    raise AssertionError("no Signed by field")


async def open_form(world: SlackWorld, user: str) -> JSON:
    """Click "Approve with comment…": returns the modal views.open showed to `user`."""
    before = len(world.fake.views_for(user))
    assert await world.click(user, "approve_comment", "R-1") == 200
    await world.settle()
    views = world.fake.views_for(user)
    assert len(views) == before + 1, world.private_texts(user)
    return views[-1]


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket"])
async def test_the_comment_button_opens_a_modal_and_its_submission_signs(sqlite_database_url: str,
                                                                        socket_mode: bool) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY, socket_mode=socket_mode) as world:
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons(world.card("R-1"))] == [
            ("signoff_approve", "R-1", "Approve"), ("signoff_approve_comment", "R-1", "Approve with comment…"),
            ("signoff_reject", "R-1", "Reject")]

        mark = world.fake.mark()
        view = await open_form(world, BOB)
        [opened] = [c for c in world.fake.calls[mark:] if c.method == "views.open"]
        assert not opened.failed and opened.args["trigger_id"]  # the click's own trigger_id
        assert view["type"] == "modal" and view["callback_id"] == "signoff_approve_comment"
        assert json.loads(view["private_metadata"])["request"] == "R-1"
        [block] = view["blocks"]
        assert block["element"]["type"] == "plain_text_input" and block["element"]["max_length"] == 500
        assert (await world.app.service.get("R-1")).signatures == ()  # opening the form signs nothing

        comment = "checked <!channel> dashboards & <https://evil.example|logs>"
        status, answer = await world.submit_view(BOB, view, {block["element"]["action_id"]: comment})
        assert (status, answer) == (200, {})  # an empty answer closes the modal
        await world.settle()
        assert any(t.startswith("✍️ You signed R-1 (▰▱ 1/2)") for t in world.private_texts(BOB))
        # Beside the signer, escaped like every user text: no channel ping, no disguised link.
        assert signed_by(world) == ("bob (slack): “checked &lt;!channel&gt; dashboards &amp; "
                                    "&lt;https://evil.example|logs&gt;”")
        request = await world.app.service.get("R-1")
        assert [(s.person, s.via, s.comment) for s in request.signatures] == [("bob", "slack", comment)]
        [signed] = [e for e in await world.app.service.timeline("R-1") if e.type is EventType.signed]
        assert signed.detail == f"via slack: {comment}" and signed.digest == signed_digest(request)

        # The plain Approve button is still one click.
        assert await world.click(CAROL, "approve", "R-1") == 200
        await world.settle()
        assert (await world.app.service.get("R-1")).status is RequestStatus.succeeded
        assert "SUCCEEDED" in card_text(world.card("R-1"))
        assert signed_by(world).splitlines()[1] == "carol (slack)"


async def test_a_comment_too_long_is_refused_in_the_modal(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        await world.command(ALICE, RESTART_API)
        await world.settle()
        view = await open_form(world, BOB)
        [block] = view["blocks"]
        # Slack's client stops at max_length; a crafted submission gets the same sentence as typed text.
        status, answer = await world.submit_view(BOB, view, {block["element"]["action_id"]: "x" * 501})
        assert status == 200 and answer == {"response_action": "errors", "errors": {
            block["block_id"]: "A comment is at most 500 characters; yours has 501. Shorten it and sign again."}}
        await world.settle()
        assert (await world.app.service.get("R-1")).signatures == ()


async def test_signing_rules_apply_to_the_button_and_to_the_submission(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        await world.command(ALICE, RESTART_API)
        await world.settle()
        # Refused before any typing, privately, in the words the Approve button would get; no modal.
        for user in (ALICE, MALLORY, "U0STRANGER"):
            assert await world.click(user, "approve_comment", "R-1") == 200
        await world.settle()
        assert world.fake.views == []
        assert any("so you can't sign it" in t for t in world.private_texts(ALICE))
        assert any("Only" in t and "may sign" in t for t in world.private_texts(MALLORY))
        assert any("I don't know who you are" in t for t in world.private_texts("U0STRANGER"))

        # The submission is checked again when it arrives: things change while a person types.
        bob_view = await open_form(world, BOB)
        action = bob_view["blocks"][0]["element"]["action_id"]
        block_id = bob_view["blocks"][0]["block_id"]
        assert await world.click(BOB, "approve", "R-1") == 200
        status, answer = await world.submit_view(BOB, bob_view, {action: "me again"})
        assert status == 200 and answer["response_action"] == "errors"
        assert "You already signed R-1" in answer["errors"][block_id]
        # A submission by someone the policy refuses is refused like their click, and noted in the thread.
        status, answer = await world.submit_view(MALLORY, bob_view, {action: "let me in"})
        assert status == 200 and "may sign" in answer["errors"][block_id]
        carol_view = await open_form(world, CAROL)
        await world.command(ALICE, "cancel R-1")
        await world.settle()
        status, answer = await world.submit_view(CAROL, carol_view, {action: "too late"})
        assert status == 200 and "can no longer be signed" in answer["errors"][block_id]
        await world.settle()

        request = await world.app.service.get("R-1")
        assert [(s.person, s.comment) for s in request.signatures] == [("bob", None)]
        assert any("mallory tried to sign" in t for t in world.thread_texts("R-1"))
        refused = [e.actor for e in await world.app.service.timeline("R-1") if e.type is EventType.refused]
        assert "alice" not in refused  # opening a form is not an attempt to sign
