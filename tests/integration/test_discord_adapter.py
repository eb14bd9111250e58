"""The Discord adapter over loopback: the real composition (services, SQLite file, sandbox cluster,
outbox workers) with `start_discord` exactly as `signoff run` starts it, against FakeDiscord driving
an unmodified discord.py client.

Why: Discord is where approvals happen for many teams; these scenarios are the contract of issue 4
(quorum from slash command to executed operation, refusals, veto, restart with old buttons, thread
answers, delivery through REST failures, API requests posted to DISCORD_CHANNEL_ID).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from core.domain.approvals import RequestStatus
from core.domain.events import EventType
from core.domain.policy import Person
from testkit.fakes.discord import (
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    FakeDiscord,
)
from testkit.support.discord import (
    ALICE,
    BOB,
    CAROL,
    EVE,
    MALLORY,
    RESTART_API,
    SUBCOMMANDS,
    THREAD_MESSAGES,
    anchored,
    card_of,
    click,
    command,
    custom_ids,
    description,
    discord_service,
    executed_events,
    followup_text,
    requested,
    restarted_at,
    thread_texts,
    wait_card,
    wait_thread_text,
)

# ---------------------------------------------------------------------------------- harness


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    # The adapter is what these tests exercise; the core's PostgreSQL variant is tested elsewhere, and
    # running every Discord scenario twice would double the time for no extra coverage of this code.
    return sqlite_database_url


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    before = asyncio.all_tasks()
    async with FakeDiscord() as server:
        for uid, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (MALLORY, "mallory"), (EVE, "eve")):
            server.add_member(uid, name)
        yield server
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before
              if not t.done() and t is not asyncio.current_task() and not _is_test(t)]
    assert not leaked, leaked
    for thread in [t for t in threading.enumerate() if t.__class__.__name__ == "KeepAliveHandler"]:
        thread.join(1.0)
        assert not thread.is_alive()




# ---------------------------------------------------------------------------------- login and commands


async def test_login_ready_intents_and_guild_command_sync(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        assert [c.path for c in fake.calls[:2]] == ["/users/@me", "/oauth2/applications/@me"]
        assert [f["t"] for f in fake.gateway_sent[:2]] == ["READY", "GUILD_CREATE"]
        assert fake.intents == (INTENT_GUILDS | INTENT_GUILD_MESSAGES | INTENT_GUILD_MESSAGE_REACTIONS
                                | INTENT_MESSAGE_CONTENT)
        assert "discord" in app.dispatcher.gateways
        assert app.service.default_places["discord"] == fake.channel_id
        [group] = fake.commands(fake.guild_id)
        assert group["name"] == "signoff" and fake.commands() == []
        options = {o["name"]: o for o in group["options"]}
        assert set(options) == SUBCOMMANDS
        request = {o["name"]: o for o in options["request"]["options"]}
        assert request["action"]["required"] and not request["reason"].get("required", False)
        assert [c["value"] for c in request["risk"]["choices"]] == ["low", "medium", "high", "critical"]
        score = next(o for o in options["resolve"]["options"] if o["name"] == "score")
        assert (score["min_value"], score["max_value"]) == (1, 5)
    guild_route = rf"/applications/{fake.application_id}/guilds/{fake.guild_id}/commands"
    assert len(fake.calls_to("PUT", guild_route)) == 1
    assert fake.connected_sessions == 0

    # A restart with the same commands reads them and writes nothing.
    async with discord_service(fake, database_url):
        pass
    assert len(fake.calls_to("PUT", guild_route)) == 1
    assert len(fake.calls_to("GET", guild_route)) == 2


async def test_without_a_guild_commands_are_synced_globally(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url, DISCORD_GUILD_ID=None):
        pass
    assert [c["name"] for c in fake.commands()] == ["signoff"]
    assert fake.commands(fake.guild_id) == []


async def test_slash_commands_answer_privately(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        assert "Commands:" in followup_text(await command(fake, ALICE, "help"))
        assert followup_text(await command(fake, ALICE, "list")).startswith("No pending requests")

        refused = followup_text(await command(fake, ALICE, "request", action="kubectl exec -it api -- sh"))
        assert "Accepted forms" in refused
        unknown = followup_text(await command(fake, EVE, "status", id="R-1"))
        assert "I don't know who you are" in unknown and EVE in unknown

        await requested(fake, app, reason='api is "slow" – see “dashboards”', risk="high")
        status = followup_text(await command(fake, BOB, "status", id="r-1"))
        assert status.startswith("⏳ R-1 is pending") and "▱▱ 0/2" in status
        timeline = followup_text(await command(fake, BOB, "timeline", id="R-1"))
        assert timeline.startswith("Timeline of R-1") and "requested" in timeline
        assert "cancel" in followup_text(await command(fake, BOB, "cancel", id="R-1")).lower()  # not hers
        cancelled = followup_text(await command(fake, ALICE, "cancel", id="R-1"))
        assert cancelled.startswith("🗑️ R-1 cancelled")
        card = await wait_card(fake, "R-1", lambda m: custom_ids(m) == [])
        assert "CANCELLED" in description(card)
        assert all(not m["flags"] & 64 for m in fake.messages())  # nothing private leaked into the channel


# ---------------------------------------------------------------------------------- the approval loop


async def test_quorum_from_slash_command_to_executed_operation(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, thread = await requested(fake, app, risk="high", reason="api is slow")
        assert custom_ids(card) == ["signoff:approve:R-1", "signoff:comment:R-1", "signoff:reject:R-1"]
        embed = card["embeds"][0]
        assert embed["title"].startswith("⏳ R-1") and RESTART_API in embed["title"]
        assert "▱▱ 0/2" in embed["description"]
        assert {f["name"]: f["value"] for f in embed["fields"]}["Reason"] == "api is slow"
        assert embed["color"] == 0xE67E22  # high risk: orange
        assert fake.channel(thread)["name"] == f"R-1 · kubectl {RESTART_API}"

        assert (await click(fake, BOB, card["id"], "signoff:approve:R-1")).startswith("✍️ You signed R-1 (▰▱ 1/2)")
        await wait_card(fake, "R-1", lambda m: "▰▱ 1/2" in description(m))
        assert restarted_at(app) is None
        text = await click(fake, CAROL, card["id"], "signoff:approve:R-1")
        assert "quorum reached" in text

        final = await wait_card(fake, "R-1", lambda m: m["embeds"][0]["title"].startswith("✅")
                                and "SUCCEEDED" in description(m))
        assert final["components"] == []
        assert final["embeds"][0]["color"] == 0x57F287
        result = await wait_thread_text(fake, thread, "R-1 succeeded")
        assert "Dry run: passed" in result
        assert any(t.startswith("✅ R-1 approved by bob, carol") for t in thread_texts(fake, thread))
        assert restarted_at(app) is not None
        assert await executed_events(app, "R-1") == 1
        assert (await app.service.get("R-1")).status is RequestStatus.succeeded
        # One card, edited in place; everything else went into its thread.
        assert [m["id"] for m in fake.messages() if m["embeds"]] == [card["id"]]


async def test_refusals_are_ephemeral_and_say_why(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, thread = await requested(fake, app, risk="high")
        approve = "signoff:approve:R-1"

        own = await click(fake, ALICE, card["id"], approve)
        assert own.startswith("You asked for R-1, so you can't sign it")
        outsider = await click(fake, MALLORY, card["id"], approve)
        assert outsider.startswith("Only members of sre may sign high-risk requests like R-1; you are in dev.")
        stranger = await click(fake, EVE, card["id"], approve)
        assert "I don't know who you are" in stranger
        assert (await click(fake, BOB, card["id"], approve)).startswith("✍️ You signed R-1")
        twice = await click(fake, BOB, card["id"], approve)
        assert twice.startswith("You already signed R-1 (1/2)")

        request = await app.service.get("R-1")
        assert request.status is RequestStatus.pending and list(request.signers) == ["bob"]
        refused = [e for e in await app.service.timeline("R-1") if e.type is EventType.refused]
        assert [e.actor for e in refused] == ["alice", "mallory", "bob"]
        # Attempts around the rules are also told to the thread, for everyone to see.
        await wait_thread_text(fake, thread, "alice tried to sign R-1 via discord and was refused")
        await wait_thread_text(fake, thread, "mallory tried to sign R-1 via discord and was refused")
        assert all(not m["flags"] & 64 for m in fake.messages())


async def test_veto_ends_the_request_and_removes_the_buttons(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, thread = await requested(fake, app, risk="high")
        assert (await click(fake, BOB, card["id"], "signoff:approve:R-1")).startswith("✍️")
        vetoed = await click(fake, CAROL, card["id"], "signoff:reject:R-1")
        assert vetoed.startswith("🚫 You vetoed R-1; nothing will run.")
        final = await wait_card(fake, "R-1", lambda m: m["components"] == [] and "REJECTED" in description(m))
        assert final["embeds"][0]["color"] == 0x95A5A6
        await wait_thread_text(fake, thread, "R-1 vetoed by carol")
        await app.settle()
        assert restarted_at(app) is None and await executed_events(app, "R-1") == 0


async def test_restart_old_buttons_still_work_and_execute_once(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, thread = await requested(fake, app, risk="high")
        assert (await click(fake, BOB, card["id"], "signoff:approve:R-1")).startswith("✍️")
        await wait_card(fake, "R-1", lambda m: "▰▱ 1/2" in description(m))
    assert fake.connected_sessions == 0

    async with discord_service(fake, database_url) as app:  # a new App and a new client, same database
        assert len(fake.identifies) == 2
        text = await click(fake, CAROL, card["id"], "signoff:approve:R-1")
        assert "quorum reached" in text
        await wait_card(fake, "R-1", lambda m: m["components"] == [] and "SUCCEEDED" in description(m))
        await wait_thread_text(fake, thread, "R-1 succeeded")
        await app.settle()
        assert await executed_events(app, "R-1") == 1
    assert [m["id"] for m in fake.messages() if m["embeds"]] == [card["id"]]


# ---------------------------------------------------------------------------------- threads and reactions


async def test_thread_timeline_is_answered_there_and_chatter_ignored(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        _, thread = await requested(fake, app, risk="high")
        mark = fake.mark()
        await fake.post_user_message(BOB, thread, "looks risky, waiting for carol")
        await fake.post_user_message(BOB, thread, f"<@{fake.bot_user_id}> Timeline")
        answer = await wait_thread_text(fake, thread, "Timeline of R-1")
        assert "requested [alice]" in answer
        # signoff's own "timeline" in the thread is no question to it; nor is the word outside a thread.
        await app.service.request_thread("R-1", "timeline")
        await fake.wait_for(lambda: "timeline" in thread_texts(fake, thread))
        await fake.post_user_message(BOB, fake.channel_id, "timeline")
        # Events are handled in order: once this is answered, the ones before it were seen.
        await fake.post_user_message(CAROL, thread, "status")
        await wait_thread_text(fake, thread, "R-1 is pending")
        await app.settle()
        posted = [c.json.get("content") for c in fake.calls[mark:]
                  if c.method == "POST" and c.path == THREAD_MESSAGES.format(thread) and not c.failed]
        assert len(posted) == 3, posted  # the timeline, signoff's note and the status: nothing for chatter
        assert [m for m in fake.messages() if m["author"]["id"] == fake.bot_user_id and not m["embeds"]] == []


async def test_a_question_asked_before_signoff_knows_the_thread_is_answered(
    fake: FakeDiscord, database_url: str,
) -> None:
    """Discord shows a card's thread before signoff knows its id: the answer to the thread's creation is still
    on its way, so signoff has not booked the thread yet. A `timeline` asked in it then is answered once the
    thread is booked, not dropped as a question in someone else's thread."""
    fake.delay("POST", r"/channels/\d+/messages/\d+/threads", 1.5, times=1, commit=True)
    async with discord_service(fake, database_url) as app:
        text = followup_text(await command(fake, ALICE, "request", action=RESTART_API, risk="high"))
        request_id = text.split()[1]
        card = await wait_card(fake, request_id, lambda m: str(m["id"]) in fake.threads)
        thread = fake.threads[str(card["id"])]
        assert await app.service.key_for_message("discord", thread) is None  # the answer is still held
        await fake.post_user_message(BOB, thread, "timeline")
        answer = await wait_thread_text(fake, thread, f"Timeline of {request_id}", timeout=20)
        assert "requested [alice]" in answer


async def test_rating_and_reaction_votes_on_a_playbook_offer(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, thread = await requested(fake, app, incident="INC-3")  # medium risk: one signature
        assert "quorum reached" in await click(fake, BOB, card["id"], "signoff:approve:R-1")
        await wait_thread_text(fake, thread, "R-1 succeeded")

        rated = followup_text(await command(fake, CAROL, "resolve", incident="INC-3", score=4))
        assert rated.startswith("🏁 INC-3 resolved; the fix rated 4/5.")
        offer = await wait_thread_text(fake, thread, "Playbook PB-1")
        offer_id = next(m["id"] for m in fake.thread_messages(thread) if m["content"] == offer)
        await anchored(app, offer_id, "PB-1")

        # Votes are reactions on the offer; the reactor is answered right under it, mentioned alone.
        await fake.add_reaction(BOB, thread, offer_id, "✅")  # bob is not in `leads`
        refused = await wait_thread_text(fake, thread, f"<@{BOB}>")
        assert "leads" in refused
        await fake.add_reaction(CAROL, thread, offer_id, "🎉")  # not a vote
        await fake.add_reaction(CAROL, thread, offer_id, "👍")
        counted = await wait_thread_text(fake, thread, f"<@{CAROL}>")
        assert counted == f"<@{CAROL}> 🗳️ Your vote on PB-1 is counted; it is approved."
        told = next(m for m in fake.thread_messages(thread) if m["content"] == counted)
        assert [u["id"] for u in told["mentions"]] == [CAROL]
        (playbook,) = await app.playbooks.all()
        assert playbook.status.value == "approved" and [v.person for v in playbook.votes] == ["carol"]
        await fake.add_reaction(ALICE, fake.channel_id, card["id"], "✅")  # on a card, not an offer: nothing
        # Reactions are handled in order: once this one is answered, the one on the card was seen.
        await fake.add_reaction(CAROL, thread, offer_id, "👎")

        def answers() -> list[str] | None:
            found = [t for t in thread_texts(fake, thread) if t.startswith("<@")]
            return found if len(found) >= 3 else None
        late = await fake.wait_for(answers)
        assert len(late) == 3 and late[2].startswith(f"<@{CAROL}>")
        assert not [m for m in fake.messages() if m["content"].startswith("<@")]


# ---------------------------------------------------------------------------------- delivery


async def test_rest_failures_around_the_result_deliver_each_message_once(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, thread = await requested(fake, app)  # medium risk: one signature
        posts = THREAD_MESSAGES.format(thread)
        fake.rate_limit("POST", posts, retry_after=0.2)  # retried inside discord.py
        fake.fail("POST", posts, status=500, commit=True)  # landed, but discord.py sees a 500 and retries
        fake.fail("POST", posts, status=503, commit=True)  # landed; not retried by discord.py: the outbox retries
        assert "quorum reached" in await click(fake, BOB, card["id"], "signoff:approve:R-1")
        await wait_thread_text(fake, thread, "R-1 succeeded", timeout=15)
        await wait_card(fake, "R-1", lambda m: m["components"] == [] and "SUCCEEDED" in description(m))
        await app.settle()
        texts = thread_texts(fake, thread)
        assert len(texts) == len(set(texts)) == 2, texts  # the approval note and the result, once each
        faults = [c.fault for c in fake.calls_to("POST", posts) if c.fault]
        assert faults == ["429", "500", "503"]
        assert await executed_events(app, "R-1") == 1


async def test_card_posted_once_when_its_thread_fails(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        cards, threads = rf"/channels/{fake.channel_id}/messages", rf"/channels/{fake.channel_id}/messages/\d+/threads"
        fake.fail("POST", cards, status=503, commit=True)  # the card lands, but signoff sees an error
        fake.fail("POST", threads, status=503)  # then opening its thread fails
        fake.fail("POST", threads, status=500, commit=True)  # the thread opens; discord.py retries: 160004
        card, thread = await requested(fake, app, risk="high")
        assert thread == str(card["id"])
        assert len([m for m in fake.messages() if m["embeds"]]) == 1
        # The retry after the 503 re-sent the card with its nonce (Discord returned the same message);
        # the retry after the thread failure did not post the card again at all.
        assert [c.status for c in fake.calls_to("POST", cards)] == [503, 200]
        assert (await click(fake, BOB, card["id"], "signoff:approve:R-1")).startswith("✍️")
        await wait_card(fake, "R-1", lambda m: "▰▱ 1/2" in description(m))
        assert [c.status for c in fake.calls_to("POST", threads)] == [503, 500, 400]


async def test_api_request_is_posted_to_the_discord_channel(fake: FakeDiscord, database_url: str) -> None:
    ops = fake.add_channel("approvals")
    async with discord_service(fake, database_url, DISCORD_CHANNEL_ID=ops) as app:
        request = await app.service.request("scale deployment/web --replicas=3 -n staging",
                                            by=Person(name="pager"), via="api", origin=None)
        card = await wait_card(fake, request.id, lambda m: str(m["id"]) in fake.threads, channel=ops)
        assert custom_ids(card) == [f"signoff:approve:{request.id}", f"signoff:comment:{request.id}",
                                    f"signoff:reject:{request.id}"]
        assert card_of(fake, request.id) is None  # not in the guild's other channel
        assert "✍️" in await click(fake, CAROL, card["id"], f"signoff:approve:{request.id}")
        await wait_card(fake, request.id, lambda m: m["components"] == [], channel=ops)


def _is_test(task: asyncio.Task[object]) -> bool:
    """pytest-asyncio's task running the test itself, not something the test left behind."""
    return str(getattr(task.get_coro(), "__name__", "")).startswith("test_")
