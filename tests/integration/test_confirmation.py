"""Typed confirmation (`confirm = true` on a risk level), on the wire: the approve click opens a form that
asks for the target's name (Slack `views.open` with `callback_id` `signoff_confirm` and the request id as
`private_metadata`; Discord modal `signoff:confirm:<id>`; the console's `approve R-1 confirm=api`), and
the signature counts only when the typed name is the target's. Signed requests into Bolt and the fake
Slack Web API, a real discord.py client on the fake gateway, the real services; nothing of ours mocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from io import StringIO
from typing import Any

import pytest

from bot.chats.console import attach_console
from core.domain.approvals import RequestStatus
from core.domain.events import EventType
from core.domain.policy import Risk
from testkit.fakes.discord import FakeDiscord
from testkit.support import discord as disc
from testkit.support import make_settings, running_app
from testkit.support.policy import RULES, team_policy
from testkit.support.slack import ALICE, BOB, CAROL, RESTART_API, buttons, slack_world

CONFIRMED_RULES = RULES.replace("[risk.high]\nquorum = 2\n", "[risk.high]\nquorum = 2\nconfirm = true\n")
SLACK_POLICY = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL}, rules=CONFIRMED_RULES)
DISCORD_POLICY = team_policy(discord={"alice": disc.ALICE, "bob": disc.BOB, "carol": disc.CAROL},
                             rules=CONFIRMED_RULES)


async def _events(app: Any, request_id: str) -> list[EventType]:
    return [e.type for e in await app.service.timeline(request_id)]


# ----------------------------------------------------------------------------------------------- Slack

@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket"])
async def test_slack_approve_opens_the_form_and_only_the_targets_name_signs(sqlite_database_url: str,
                                                                           socket_mode: bool) -> None:
    async with slack_world(sqlite_database_url, policy=SLACK_POLICY, socket_mode=socket_mode) as world:
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        # One Approve… (a form follows) and Reject.
        assert [(b["action_id"], b["text"]["text"]) for b in buttons(world.card("R-1"))] == [
            ("signoff_approve", "Approve…"), ("signoff_reject", "Reject")]
        assert "Signing needs the target's name typed: api" in str(world.card("R-1")["blocks"])

        assert await world.click(BOB, "approve", "R-1") == 200
        await world.settle()
        [view] = world.fake.views_for(BOB)
        assert (view["callback_id"], view["private_metadata"]) == ("signoff_confirm", "R-1")
        [name_block] = view["blocks"]  # one plain-text input
        assert name_block["block_id"] == "signoff_confirm" and "Type api to sign" in name_block["label"]["text"]
        assert name_block["element"]["type"] == "plain_text_input"
        assert (await world.app.service.get("R-1")).signatures == ()  # the click itself signs nothing
        assert EventType.refused not in await _events(world.app, "R-1")

        # A wrong name: the form stays open with the sentence under the input; the refusal is on record.
        status, answer = await world.submit_view(BOB, view, {"name": "web"})
        assert status == 200 and answer["response_action"] == "errors"
        assert answer["errors"]["signoff_confirm"].startswith("You typed web, which is not the target of R-1: "
                                                              "type api")
        assert (await world.app.service.get("R-1")).signatures == ()
        assert (await _events(world.app, "R-1")).count(EventType.refused) == 1

        status, answer = await world.submit_view(BOB, view, {"name": " api "})
        assert (status, answer) == (200, {})
        await world.settle()
        request = await world.app.service.get("R-1")
        assert [(s.person, s.via) for s in request.signatures] == [("bob", "slack")]
        assert any(t.startswith("✍️ You signed R-1 (▰▱ 1/2)") for t in world.private_texts(BOB))


async def test_slack_a_form_submitted_after_the_request_ended_is_refused(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=SLACK_POLICY) as world:
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        assert await world.click(BOB, "approve", "R-1") == 200
        await world.settle()
        [view] = world.fake.views_for(BOB)
        assert await world.command(ALICE, "cancel R-1") == 200
        await world.settle()
        status, answer = await world.submit_view(BOB, view, {"name": "api"})
        assert status == 200 and answer["response_action"] == "errors"
        assert "R-1 is cancelled" in answer["errors"]["signoff_confirm"]
        assert (await world.app.service.get("R-1")).status is RequestStatus.cancelled


# --------------------------------------------------------------------------------------------- Discord

@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        for uid, name in ((disc.ALICE, "alice"), (disc.BOB, "bob"), (disc.CAROL, "carol")):
            server.add_member(uid, name)
        yield server


async def test_discord_approve_answers_with_the_form_and_only_the_targets_name_signs(
        fake: FakeDiscord, sqlite_database_url: str) -> None:
    async with disc.discord_service(fake, sqlite_database_url, policy=DISCORD_POLICY) as app:
        card, _ = await disc.requested(fake, app, risk="high")
        assert disc.custom_ids(card) == ["signoff:approve:R-1", "signoff:reject:R-1"]
        assert [c["label"] for row in card["components"] for c in row["components"]] == ["Approve…", "Reject"]

        sent = await fake.click(disc.BOB, card["id"], "signoff:approve:R-1")
        await fake.wait_for(lambda: fake.interaction_responses(sent["id"]) or None)
        [reply] = fake.interaction_responses(sent["id"])
        assert (reply.kind, reply.type) == ("callback", 9), reply  # the modal is the click's one answer
        modal = fake.modal(sent["id"])
        assert modal["custom_id"] == "signoff:confirm:R-1"
        inputs = [c for row in modal["components"] for c in row["components"]]
        assert [(i["custom_id"], i["required"]) for i in inputs] == [("name", True)]  # one input
        assert "Type api to sign" in inputs[0]["label"]

        wrong = await fake.submit_modal(sent["id"], {"name": "deployment/web"})
        text = disc.followup_text(await disc.answered(fake, wrong))
        assert text.startswith("You typed deployment/web, which is not the target of R-1: type api"), text
        assert (await app.service.get("R-1")).signatures == ()

        # A Discord modal closes on submit: the signer clicks Approve… again for a second try.
        again = await fake.click(disc.BOB, card["id"], "signoff:approve:R-1")
        await fake.wait_for(lambda: fake.interaction_responses(again["id"]) or None)
        right = await fake.submit_modal(again["id"], {"name": "deployment/api"})
        text = disc.followup_text(await disc.answered(fake, right))
        assert text.startswith("✍️ You signed R-1 (▰▱ 1/2)"), text
        request = await app.service.get("R-1")
        assert [(s.person, s.via) for s in request.signatures] == [("bob", "discord")]


# --------------------------------------------------------------------------------------------- console

async def test_console_approve_takes_the_name_as_confirm(sqlite_database_url: str) -> None:
    policy = team_policy(slack={"alice": "UA", "bob": "UB", "carol": "UC"}, rules=CONFIRMED_RULES)
    async with running_app(make_settings(sqlite_database_url), policy=policy) as app:
        transcript = StringIO()
        console = attach_console(app, transcript)
        await console.line("as alice")
        await console.line("request rollout restart deployment/api -n prod risk=high")
        await console.line("as bob")
        await console.line("approve R-1")
        assert "type api to sign it (`approve R-1 confirm=api`" in transcript.getvalue()
        await console.line("approve R-1 confirm=web")
        assert "You typed web, which is not the target of R-1" in transcript.getvalue()
        await console.line('approve R-1 confirm=api comment="looked at it"')
        await console.line("as carol")
        await console.line("approve R-1 confirm=api")
        request = await app.service.get("R-1")
        assert [(s.person, s.comment) for s in request.signatures] == [("bob", "looked at it"), ("carol", None)]
        assert request.status is not RequestStatus.pending
        # only the wrong name is on record as a refusal; the plain `approve R-1` asked, it refused no one
        assert (await _events(app, "R-1")).count(EventType.refused) == 1


async def test_a_level_without_confirm_keeps_its_one_click(sqlite_database_url: str) -> None:
    policy = team_policy(slack={"alice": "UA", "bob": "UB"}, rules=CONFIRMED_RULES)
    async with running_app(make_settings(sqlite_database_url), policy=policy) as app:
        transcript = StringIO()
        console = attach_console(app, transcript)
        await console.line("as alice")
        await console.line("request rollout restart deployment/api -n prod risk=medium")
        await console.line("as bob")
        await console.line("approve R-1")
        assert (await app.service.get("R-1")).signed == 1


async def test_switching_confirm_off_in_the_database_is_caught_before_anything_runs(sqlite_database_url: str) -> None:
    """The flag is part of what was signed (the signature digest): a request edited to skip the typing is blocked."""
    policy = team_policy(slack={"alice": "UA", "bob": "UB", "carol": "UC"}, rules=CONFIRMED_RULES)
    async with running_app(make_settings(sqlite_database_url), policy=policy) as app:
        people = app.policy.people
        request = await app.service.request("rollout restart deployment/api -n prod", by=people["alice"],
                                            via="console", risk=Risk.high)
        assert request.confirm

        def forge(uow: Any) -> None:
            current = uow.requests.get(request.id)
            uow.requests.update(current.model_copy(update={"confirm": False}), expected_version=current.version)

        await app.db.write(forge)
        for signer in ("bob", "carol"):  # no name typed: the forged row no longer asks for it
            await app.service.sign(request.id, by=people[signer], via="console")
        await app.settle()
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.blocked, done.outcome
        assert done.outcome is not None and "not what was signed" in done.outcome.summary
