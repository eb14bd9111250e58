"""Slack in HTTP mode, end to end over loopback: signed requests to our real POST /slack/events,
the real services, a SQLite file, the sandbox cluster, and the fake Slack Web API.

Assertions read what a person in Slack would see (the channel, threads, private messages)
and what the cluster received; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from core.app.handlers import Caller
from core.chat.commands import Command, Reply
from core.chat.parser import WORDS
from core.errors import NotFound
from testkit.fakes.slack import (
    FakeSlack,
    event_body,
    message_event,
    post_signed,
    reaction_added_event,
    sign,
    slash_command_body,
    thread_message_event,
)
from testkit.support import MovableClock
from testkit.support.slack import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    MALLORY,
    RESTART_API,
    SECRET,
    TEAM_POLICY,
    buttons,
    card_text,
    slack_world,
)


async def test_quorum_flow_executes_once_and_reports_in_the_thread(database_url: str) -> None:
    async with slack_world(database_url, policy=TEAM_POLICY) as world:
        fake = world.fake
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        assert any("R-1" in t for t in world.private_texts(ALICE))

        card = world.card("R-1")
        shown = card_text(card)
        for expected in ("rollout restart deployment/api -n prod", "alice", "api is slow", "high",
                         "Blast radius", "▱▱ 0/2", "Expires", "Signed by"):
            assert expected in shown, expected
        assert [(b["action_id"], b["value"]) for b in buttons(card)] == [
            ("signoff_approve", "R-1"), ("signoff_approve_comment", "R-1"), ("signoff_reject", "R-1")]

        assert await world.click(BOB, "approve", "R-1") == 200
        await world.settle()
        assert any("You signed R-1" in t for t in world.private_texts(BOB))
        assert "▰▱ 1/2" in card_text(world.card("R-1"))
        assert world.real_writes("deployments/api") == []

        mark = fake.mark()
        assert await world.click(CAROL, "approve", "R-1") == 200
        await world.settle()

        assert len(world.real_writes("deployments/api")) == 1
        deployment = world.app.sandbox.get("deployment", "prod", "api")
        assert "kubectl.kubernetes.io/restartedAt" in deployment["spec"]["template"]["metadata"]["annotations"]

        final = world.card("R-1")
        assert buttons(final) == []
        assert "SUCCEEDED" in card_text(final) and "▰▰ 2/2" in card_text(final)
        results = [t for t in world.thread_texts("R-1") if "R-1 succeeded" in t]
        assert len(results) == 1
        # The result went into the card's thread, and the card was rewritten with its full final blocks.
        posts = [c for c in fake.calls[mark:] if c.method == "chat.postMessage" and not c.failed]
        assert any(c.args.get("thread_ts") == final["ts"] and "succeeded" in c.args["text"] for c in posts)
        updates = [c for c in fake.calls_to("chat.update") if c.args.get("ts") == final["ts"] and not c.failed]
        assert updates and updates[-1].args["blocks"] == final["blocks"]


async def test_refused_clicks_are_explained_privately(database_url: str) -> None:
    async with slack_world(database_url, policy=TEAM_POLICY) as world:
        await world.command(ALICE, RESTART_API)
        await world.settle()

        await world.click(ALICE, "approve", "R-1")   # her own request
        await world.click(MALLORY, "approve", "R-1")  # not in an approver group
        await world.click(BOB, "approve", "R-1")
        await world.click(BOB, "approve", "R-1")     # twice
        await world.click("U0STRANGER", "approve", "R-1")  # not in the policy at all
        await world.settle()

        assert any("so you can't sign it" in t for t in world.private_texts(ALICE))
        assert any("Only" in t and "may sign" in t for t in world.private_texts(MALLORY))
        bob = world.private_texts(BOB)
        assert any("You signed R-1" in t for t in bob) and any("You already signed R-1" in t for t in bob)
        assert any("I don't know who you are" in t for t in world.private_texts("U0STRANGER"))
        # Private means private: nobody else saw those answers, and only Bob's signature counts.
        assert {e["user"] for e in world.fake.ephemerals} == {ALICE, MALLORY, BOB, "U0STRANGER"}
        assert "▰▱ 1/2" in card_text(world.card("R-1"))
        assert "bob (slack)" in card_text(world.card("R-1"))
        # Attempts around the rules are noted in the thread for everyone; a double click is not.
        thread = world.thread_texts("R-1")
        assert any("alice tried to sign" in t for t in thread)
        assert any("mallory tried to sign" in t for t in thread)
        assert not any("bob tried" in t for t in thread)


async def test_veto_ends_the_request_and_the_card(database_url: str) -> None:
    async with slack_world(database_url, policy=TEAM_POLICY) as world:
        await world.command(ALICE, RESTART_API)
        await world.settle()
        await world.click(BOB, "approve", "R-1")
        await world.click(CAROL, "reject", "R-1")
        await world.settle()

        assert any("You vetoed R-1" in t for t in world.private_texts(CAROL))
        card = world.card("R-1")
        assert buttons(card) == [] and "REJECTED" in card_text(card) and "vetoed by carol" in card_text(card)
        assert any("vetoed by carol" in t for t in world.thread_texts("R-1"))
        assert world.real_writes("deployments/api") == []
        # A late click on the vetoed request is refused privately.
        await world.click(CAROL, "approve", "R-1")
        await world.settle()
        assert any("can no longer be signed" in t for t in world.private_texts(CAROL))


async def test_expiry_updates_the_card(database_url: str) -> None:
    clock = MovableClock()
    async with slack_world(database_url, policy=TEAM_POLICY, clock=clock) as world:
        await world.command(ALICE, RESTART_API)
        await world.settle()
        assert "Expires" in card_text(world.card("R-1"))

        clock.advance(minutes=31)
        assert (await world.app.maintenance.sweep())["expired"] == 1
        await world.settle()

        card = world.card("R-1")
        assert buttons(card) == []
        assert "EXPIRED" in card_text(card) and "Expires" not in card_text(card)
        assert any("R-1 expired" in t for t in world.thread_texts("R-1"))
        await world.click(BOB, "approve", "R-1")
        await world.settle()
        assert any("R-1 is expired" in t for t in world.private_texts(BOB))


async def test_bad_action_text_is_refused_privately_and_stores_nothing(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        for text in ("request kubectl exec -it api -- sh", "request delete pods --all -n prod",
                     "request rollout restart deployment/api; rm -rf /"):
            assert await world.command(ALICE, text) == 200
        await world.command(ALICE, "frobnicate R-1")
        await world.settle()

        answers = world.private_texts(ALICE)
        assert len(answers) == 4
        assert all("Accepted forms" in t for t in answers[:3])
        assert "rollout restart deployment/api -n prod" in answers[0]
        assert "I don't know the command" in answers[3]
        assert world.fake.calls_to("chat.postMessage") == []
        assert await world.app.service.pending() == []
        with pytest.raises(NotFound):
            await world.app.service.get("R-1")


async def test_help_is_private_and_markup_is_escaped(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        await world.command(ALICE, "help")
        await world.command(ALICE, "")
        await world.command(ALICE, 'request rollout restart deployment/api -n prod reason="<!channel> look"')
        await world.settle()
        answers = world.private_texts(ALICE)
        assert sum("Commands:" in t for t in answers) == 2
        # A reason typed by a person must not ping the channel from the card.
        shown = card_text(world.card("R-1"))
        assert "<!channel>" not in shown and "&lt;!channel&gt; look" in shown


async def test_forged_and_stale_requests_get_401_and_store_nothing(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        assert world.events_url is not None
        response_url = world.fake.new_response_url(CHANNEL, user_id=ALICE)
        body = slash_command_body(RESTART_API, ALICE, CHANNEL, response_url)

        forged, _ = await post_signed(world.events_url, body, "not-the-secret", session=world.session)
        stale, _ = await post_signed(world.events_url, body, SECRET, timestamp=int(time.time()) - 600,
                                     session=world.session)
        # Correct headers for the original body, sent with a different body.
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)}
        async with world.session.post(world.events_url, data=body.replace(b"ALICE", b"BOB"),
                                      headers=headers) as response:
            tampered = response.status
        await world.settle()

        assert (forged, stale, tampered) == (401, 401, 401)
        assert world.fake.ephemerals == [] and world.fake.calls_to("chat.postMessage") == []
        with pytest.raises(NotFound):
            await world.app.service.get("R-1")


async def test_thread_timeline_is_answered_and_chatter_is_ignored(database_url: str) -> None:
    async with slack_world(database_url, policy=TEAM_POLICY) as world:
        fake = world.fake
        await world.command(ALICE, RESTART_API)
        await world.settle()
        card_ts = world.card("R-1")["ts"]

        assert await world.event(thread_message_event(BOB, CHANNEL, "timeline", card_ts)) == 200
        await world.settle()
        answers = [t for t in world.thread_texts("R-1") if "Timeline of R-1" in t]
        assert len(answers) == 1 and "requested" in answers[0]

        posted = len(fake.calls_to("chat.postMessage"))
        own = thread_message_event(fake.bot_user_id, CHANNEL, "timeline", card_ts)
        own["bot_id"] = fake.bot_id
        other_bot = thread_message_event("U0OTHERBOT", CHANNEL, "status", card_ts)
        other_bot["bot_id"] = "B0OTHER"
        edited = thread_message_event(BOB, CHANNEL, "status", card_ts)
        edited["subtype"] = "message_changed"
        for event in (
            thread_message_event(BOB, CHANNEL, "looks good to me", card_ts),  # chatter in the thread
            message_event(BOB, CHANNEL, "timeline"),                           # top level, not a thread
            thread_message_event(BOB, CHANNEL, "timeline", "1111111111.000100"),  # some other thread
            own, other_bot, edited,
            reaction_added_event(BOB, "+1", CHANNEL, card_ts),                 # a reaction on a card: no vote
            {"type": "member_joined_channel", "user": BOB, "channel": CHANNEL},  # nothing we listen for
        ):
            assert await world.event(event) == 200
        await world.settle()
        assert len(fake.calls_to("chat.postMessage")) == posted
        assert fake.ephemerals_for(BOB) == []

        await world.event(thread_message_event(CAROL, CHANNEL, "Status", card_ts))
        await world.settle()
        assert any(t.startswith("⏳ R-1 is pending") for t in world.thread_texts("R-1"))


async def test_slack_failures_around_the_result_still_deliver_it_once(database_url: str) -> None:
    clock = MovableClock()
    async with slack_world(database_url, policy=TEAM_POLICY, clock=clock) as world:
        fake = world.fake
        await world.command(ALICE, RESTART_API)
        await world.settle()
        await world.click(BOB, "approve", "R-1")
        await world.settle()

        fake.fail("chat.postMessage", 500, times=3)
        fake.fail("chat.postMessage", 503, times=1)
        fake.rate_limit("chat.postMessage", retry_after=30, times=2)
        fake.rate_limit("chat.update", retry_after=30, times=1)
        await world.click(CAROL, "approve", "R-1")
        for _ in range(10):  # each pass: deliver what is due, then let the retry time pass
            await world.settle()
            clock.advance(minutes=5)
        await world.settle()

        failed = [c for c in fake.calls if c.failed]
        assert {c.status for c in failed} >= {500, 503, 429}
        thread = world.thread_texts("R-1")
        assert len([t for t in thread if "R-1 succeeded" in t]) == 1
        assert len([t for t in thread if "R-1 approved by" in t]) == 1
        assert len(world.real_writes("deployments/api")) == 1
        final = world.card("R-1")
        assert buttons(final) == [] and "SUCCEEDED" in card_text(final)


async def test_restart_between_two_signatures_executes_once(database_url: str) -> None:
    async with FakeSlack() as fake:
        async with slack_world(database_url, fake=fake, policy=TEAM_POLICY) as first:
            await first.command(ALICE, RESTART_API)
            await first.settle()
            await first.click(BOB, "approve", "R-1")
            await first.settle()
            assert first.real_writes("deployments/api") == []

        async with slack_world(database_url, fake=fake, policy=TEAM_POLICY) as second:
            await second.app.maintenance.recover(sole_worker=second.app.db.sole_worker)
            await second.click(BOB, "approve", "R-1")  # the restart forgot nothing: still one signature each
            await second.click(CAROL, "approve", "R-1")
            await second.settle()
            assert any("You already signed R-1" in t for t in second.private_texts(BOB))
            assert len(second.real_writes("deployments/api")) == 1
            cards = [m for m in fake.messages(CHANNEL) if any(b["type"] == "header" for b in m.get("blocks") or [])]
            assert len(cards) == 1  # the same card, updated in place by the new process
            assert buttons(cards[0]) == [] and "SUCCEEDED" in card_text(cards[0])
            assert len([t for t in second.thread_texts("R-1") if "R-1 succeeded" in t]) == 1


async def test_requests_from_the_http_api_go_to_slack_channel(database_url: str) -> None:
    async with slack_world(database_url, policy=TEAM_POLICY, api_token="api-token-for-tests") as world:
        # With a roster, the API (like chat) refuses a person the policy does not list.
        async with world.session.post(
            f"{world.base_url}/api/v1/requests", headers={"Authorization": "Bearer api-token-for-tests"},
            json={"action": "rollout restart deployment/web -n prod", "requested_by": "alertmanager"},
        ) as response:
            assert response.status == 403
        async with world.session.post(
            f"{world.base_url}/api/v1/requests", headers={"Authorization": "Bearer api-token-for-tests"},
            json={"action": "rollout restart deployment/web -n prod", "requested_by": "alice"},
        ) as response:
            assert response.status == 201
        await world.settle()
        card = world.card("R-1", CHANNEL)
        assert [b["action_id"] for b in buttons(card)] == ["signoff_approve", "signoff_approve_comment",
                                                               "signoff_reject"]
        await world.click(BOB, "approve", "R-1")
        await world.settle()
        assert len(world.real_writes("deployments/web")) == 1


async def test_slack_url_verification_is_answered(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        assert world.events_url is not None
        challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        body = json.dumps({"token": "verification-token", "challenge": challenge, "type": "url_verification"})
        status, text = await post_signed(world.events_url, body.encode(), SECRET, session=world.session)
        assert status == 200 and challenge in text


class Broken(Command):
    """A later feature's command whose handler has a bug."""


class Slow(Command):
    pass


class Hang(Command):
    pass


async def test_a_crash_inside_signoff_is_told_to_the_person(sqlite_database_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        async def broken(command: Broken, caller: Caller) -> Reply:
            raise RuntimeError("a bug in a later feature")

        world.app.chat.handlers.add(Broken, broken)
        monkeypatch.setitem(WORDS, "broken", lambda rest: Broken())
        assert await world.command(ALICE, "broken") == 200
        await world.settle()
        assert world.slack.jobs.failed == 1
        assert any("internal error" in t for t in world.private_texts(ALICE))
        # The adapter keeps serving.
        await world.command(ALICE, "help")
        await world.settle()
        assert any("Commands:" in t for t in world.private_texts(ALICE))


async def test_an_event_slack_redelivers_is_answered_once(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        await world.command(ALICE, RESTART_API)
        await world.settle()
        body = event_body(thread_message_event(BOB, CHANNEL, "status", world.card("R-1")["ts"]))
        assert world.events_url is not None
        for _ in range(3):  # Slack's retries carry the same event_id
            status, _ = await post_signed(world.events_url, body, SECRET, session=world.session)
            assert status == 200
        await world.settle()
        assert len([t for t in world.thread_texts("R-1") if t.startswith("⏳ R-1 is pending")]) == 1


async def test_work_still_running_at_shutdown_is_finished_or_told(sqlite_database_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    release, never = asyncio.Event(), asyncio.Event()

    async def quick_enough(command: Slow, caller: Caller) -> Reply:
        await release.wait()
        return Reply(text="finished")

    async def hangs(command: Hang, caller: Caller) -> Reply:
        await never.wait()
        return Reply(text="never")

    async with FakeSlack() as fake:
        async with slack_world(sqlite_database_url, fake=fake, policy=TEAM_POLICY) as world:
            world.app.chat.handlers.add(Slow, quick_enough).add(Hang, hangs)
            monkeypatch.setitem(WORDS, "slow", lambda rest: Slow())
            monkeypatch.setitem(WORDS, "hang", lambda rest: Hang())
            world.slack.jobs.drain_s = 0.5
            await world.command(ALICE, "slow")
            await world.command(BOB, "hang")
            assert world.slack.jobs.in_flight == 2  # both acked, both still working
            # Shutdown begins now: one job ends within the drain time, the other never would.
            asyncio.get_running_loop().call_later(0.05, release.set)
        assert [e["text"] for e in fake.ephemerals_for(ALICE)] == ["finished"]
        (told,) = fake.ephemerals_for(BOB)
        assert "restarting" in told["text"] and "before trying again" in told["text"]


async def test_slack_unreachable_at_start_up_defers_authorization_to_first_request(sqlite_database_url: str) -> None:
    async with FakeSlack() as fake:
        fake.fail("auth.test", 500, times=2)  # the call and slack_sdk's one retry
        async with slack_world(sqlite_database_url, fake=fake, policy=TEAM_POLICY) as world:
            assert world.slack.bot_user_id is None
            assert await world.command(ALICE, "help") == 200
            await world.settle()
            assert world.slack.bot_user_id == fake.bot_user_id
            assert any("Commands:" in t for t in world.private_texts(ALICE))
            assert len(fake.calls_to("auth.test")) == 3
