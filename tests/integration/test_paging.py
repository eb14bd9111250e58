"""Paging on the wire: who a new card mentions, escalation and the reminder driven by the sweep with a
movable clock, the requester mentioned on expiry and veto, and impossible quorums refused at once.

Checked in what Slack and Discord receive: the `text` of `chat.postMessage` / `chat.update`, and the
message `content` and `allowed_mentions` of Discord's create-message calls."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bot.bootstrap import App
from bot.chats.discord import start_discord
from core.domain.events import EventType
from testkit.fakes.discord import FakeDiscord
from testkit.support.app import MovableClock, running_app
from testkit.support.discord import ALICE as D_ALICE
from testkit.support.discord import BOB as D_BOB
from testkit.support.discord import CAROL as D_CAROL
from testkit.support.discord import MALLORY as D_MALLORY
from testkit.support.discord import click, command, followup_text, settings_for, thread_texts, wait_card
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, CAROL, CHANNEL, MALLORY, card_text, slack_world

LEADS_ROLE = "999999999999999999"
PAGING_RULES = f"""
[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 2
approvers = ["sre"]
escalate_after = "10m"
escalate_to = ["leads"]
remind_before_expiry = "5m"

[risk.critical]
quorum = 3
approvers = ["sre"]

[groups.leads]
slack = "S0LEADS"
discord = "{LEADS_ROLE}"

[playbooks]
quorum = 1
approvers = ["leads"]
"""
SRE_HANDLE = """
[groups.sre]
slack = "S0SRE"
"""
SLACK_POLICY = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL, "mallory": MALLORY},
                           rules=PAGING_RULES + SRE_HANDLE)
DISCORD_POLICY = team_policy(discord={"alice": D_ALICE, "bob": D_BOB, "carol": D_CAROL, "mallory": D_MALLORY},
                             rules=PAGING_RULES)
HIGH = 'request rollout restart deployment/api -n prod risk=high reason="api is slow"'


def top_level_posts(world: Any) -> list[dict[str, Any]]:
    return [c.args for c in world.fake.calls_to("chat.postMessage") if not c.failed and not c.args.get("thread_ts")]


def mentions_in(text: str) -> bool:
    return "<@" in text or "<!" in text


async def test_slack_card_mentions_once_then_escalates_reminds_and_expires_once(sqlite_database_url: str) -> None:
    clock = MovableClock()
    async with slack_world(sqlite_database_url, policy=SLACK_POLICY, clock=clock) as world:
        assert await world.command(ALICE, HIGH) == 200
        await world.settle()
        # The first post pages the approver group by its handle, in `text` (where Slack pages from).
        (post,) = top_level_posts(world)
        assert post["text"].startswith("Can sign: <!subteam^S0SRE> ·"), post["text"]
        assert "R-1" in post["text"]

        await world.click(BOB, "approve", "R-1")
        await world.settle()
        updates = [c.args for c in world.fake.calls_to("chat.update")]
        assert updates and not any(mentions_in(u["text"]) or mentions_in(str(u.get("blocks"))) for u in updates)

        clock.advance(minutes=9)
        assert (await world.app.maintenance.sweep()).get("escalated", 0) == 0
        clock.advance(minutes=1)
        assert (await world.app.maintenance.sweep())["escalated"] == 1
        assert (await world.app.maintenance.sweep())["escalated"] == 0  # once
        await world.settle()
        escalations = [t for t in world.thread_texts("R-1") if "escalating to leads" in t]
        assert len(escalations) == 1
        assert escalations[0].startswith("<!subteam^S0LEADS> ⏫ R-1 still has 1/2 signature(s)"), escalations[0]
        assert "Escalated" in card_text(world.card("R-1"))

        clock.advance(minutes=15)  # 25 minutes: five before expiry
        assert (await world.app.maintenance.sweep())["reminded"] == 1
        assert (await world.app.maintenance.sweep())["reminded"] == 0
        await world.settle()
        (reminder,) = [t for t in world.thread_texts("R-1") if "⏰" in t]
        # Only carol has not signed: alice asked, bob signed, mallory is no SRE.
        assert reminder.startswith(f"<@{CAROL}> ⏰ R-1 expires in 5m"), reminder
        assert f"<@{BOB}>" not in reminder and f"<@{ALICE}>" not in reminder

        clock.advance(minutes=5)
        assert (await world.app.maintenance.sweep())["expired"] == 1
        await world.settle()
        (expired,) = [t for t in world.thread_texts("R-1") if "R-1 expired" in t]
        assert expired.startswith(f"<@{ALICE}> ⌛"), expired
        events = [e.type for e in await world.app.service.timeline("R-1")]
        assert events.count(EventType.escalated) == 1 and events.count(EventType.reminded) == 1
        # Every thread message after the first post pages at most the people it names.
        assert len(top_level_posts(world)) == 1


async def test_slack_veto_mentions_the_requester_and_signed_requests_are_not_paged(sqlite_database_url: str) -> None:
    clock = MovableClock()
    async with slack_world(sqlite_database_url, policy=SLACK_POLICY, clock=clock) as world:
        await world.command(ALICE, HIGH)
        await world.command(ALICE, 'request rollout restart deployment/web -n prod risk=high')
        await world.settle()
        await world.click(CAROL, "reject", "R-1")
        await world.click(BOB, "approve", "R-2")
        await world.click(CAROL, "approve", "R-2")
        await world.settle()
        (vetoed,) = [t for t in world.thread_texts("R-1") if "vetoed" in t]
        assert vetoed.startswith(f"<@{ALICE}> 🚫 R-1 vetoed by carol"), vetoed
        clock.advance(minutes=11)
        counts = await world.app.maintenance.sweep()
        assert counts.get("escalated") == 0 and counts.get("reminded") == 0
        approved = [t for t in world.thread_texts("R-2") if "approved by" in t]
        assert approved and not any(mentions_in(t) for t in approved)


async def test_impossible_quorum_is_refused_at_once_on_slack(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=SLACK_POLICY) as world:
        # critical takes 3 SREs; alice, bob and carol are the only ones, and alice cannot sign her own.
        await world.command(ALICE, "request rollout restart deployment/coredns -n kube-system")
        await world.settle()
        (answer,) = world.private_texts(ALICE)
        assert "can never be approved" in answer
        assert "needs 3 signature(s) from members of sre, and only 2 could sign (bob, carol)" in answer
        assert top_level_posts(world) == []
        assert await world.app.service.pending() == []


async def test_slack_critical_requests_reach_each_approver_directly(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=SLACK_POLICY) as world:
        # mallory (a developer) asks for something in a protected namespace: critical, 3 of the SREs.
        await world.command(MALLORY, "request rollout restart deployment/coredns -n kube-system")
        await world.settle()
        card = world.card("R-1")
        assert card["text"].startswith("Can sign: <!subteam^S0SRE> ·")
        opened = [c.args["users"] for c in world.fake.calls_to("conversations.open") if not c.failed]
        assert sorted(opened) == sorted([ALICE, BOB, CAROL])
        for user in (ALICE, BOB, CAROL):
            (dm,) = world.fake.messages("D" + user.removeprefix("U"))
            assert "critical" in dm["text"] and "R-1" in dm["text"]
            assert f"/archives/{CHANNEL}/p{card['ts'].replace('.', '')}" in dm["text"]
        assert not world.fake.messages("D0MALLORY")


@contextlib.asynccontextmanager
async def discord_app(fake: FakeDiscord, clock: MovableClock, database_url: str) -> AsyncIterator[App]:
    # The test sweeps itself, after moving the clock: the background sweep must not race it.
    settings = settings_for(fake, database_url, SIGNOFF_SWEEP_INTERVAL="3600")
    async with running_app(settings, policy=DISCORD_POLICY, clock=clock) as app, \
            start_discord(app, settings, guild_ready_timeout=0.05), app.background():
        yield app


def pings(body: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """`allowed_mentions` as (parse, users, roles); discord.py sends snowflakes as JSON numbers."""
    allowed = body.get("allowed_mentions")
    assert allowed is not None, f"no allowed_mentions in {body}"
    assert not allowed.get("replied_user")
    return (list(allowed.get("parse", ["unset"])), [str(u) for u in allowed.get("users", [])],
            [str(r) for r in allowed.get("roles", [])])


def created_messages(fake: FakeDiscord, since: int = 0) -> list[Any]:
    return [c.json for c in fake.calls_to("POST", r"/channels/\d+/messages$")[since:] if not c.failed]


async def test_discord_mentions_and_allowed_mentions_on_the_wire(sqlite_database_url: str) -> None:
    clock = MovableClock()
    async with FakeDiscord() as fake, discord_app(fake, clock, sqlite_database_url) as app:
        for user, name in ((D_ALICE, "alice"), (D_BOB, "bob"), (D_CAROL, "carol")):
            fake.add_member(user, name)
        text = followup_text(await command(fake, D_ALICE, "request", action="rollout restart deployment/api -n prod",
                                           risk="high"))
        assert text.startswith("📝 R-1"), text
        card = await wait_card(fake, "R-1", lambda m: str(m["id"]) in fake.threads)
        thread = fake.threads[str(card["id"])]
        # sre has no Discord role: each eligible SRE but the requester is named, and only they may be pinged.
        (first,) = [body for body in created_messages(fake) if body.get("embeds")]
        assert first["content"] == f"Can sign: <@{D_BOB}> <@{D_CAROL}>"
        assert pings(first) == ([], [D_BOB, D_CAROL], [])

        assert "You signed R-1" in await click(fake, D_BOB, card["id"], "signoff:approve:R-1")
        await fake.wait_for(lambda: fake.calls_to("PATCH", rf"/channels/\d+/messages/{card['id']}$") or None)
        for edit in fake.calls_to("PATCH", rf"/channels/\d+/messages/{card['id']}$"):
            assert "<@" not in str(edit.json.get("content") or "")

        mark = len(fake.calls_to("POST", r"/channels/\d+/messages$"))
        clock.advance(minutes=10)
        assert (await app.maintenance.sweep())["escalated"] == 1
        escalation = await fake.wait_for(
            lambda: next((b for b in created_messages(fake, mark) if "escalating" in str(b.get("content"))), None))
        assert escalation["content"].startswith(f"<@&{LEADS_ROLE}> ⏫ R-1")
        assert pings(escalation) == ([], [], [LEADS_ROLE])

        clock.advance(minutes=15)
        assert (await app.maintenance.sweep())["reminded"] == 1
        reminder = await fake.wait_for(
            lambda: next((b for b in created_messages(fake, mark) if "⏰" in str(b.get("content"))), None))
        assert reminder["content"].startswith(f"<@{D_CAROL}> ⏰ R-1")
        assert pings(reminder) == ([], [D_CAROL], [])

        clock.advance(minutes=5)
        assert (await app.maintenance.sweep())["expired"] == 1
        expired = await fake.wait_for(
            lambda: next((b for b in created_messages(fake, mark) if "R-1 expired" in str(b.get("content"))), None))
        assert expired["content"].startswith(f"<@{D_ALICE}> ⌛")
        assert pings(expired) == ([], [D_ALICE], [])
        # Messages that page nobody allow nobody.
        await command(fake, D_ALICE, "request", action="rollout restart deployment/api -n prod")
        second = await wait_card(fake, "R-2", lambda m: str(m["id"]) in fake.threads)
        assert "You signed R-2" in await click(fake, D_BOB, second["id"], "signoff:approve:R-2")
        await fake.wait_for(lambda: next((b for b in created_messages(fake)
                                          if "R-2 approved by" in str(b.get("content"))), None))
        quiet = [b for b in created_messages(fake) if not b.get("embeds") and "<@" not in str(b.get("content"))]
        assert quiet and all(pings(b) == ([], [], []) for b in quiet)
        assert len([t for t in thread_texts(fake, thread) if "escalating" in t]) == 1


async def test_discord_critical_requests_reach_each_approver_directly(sqlite_database_url: str) -> None:
    async with FakeDiscord() as fake, discord_app(fake, MovableClock(), sqlite_database_url):
        for user, name in ((D_ALICE, "alice"), (D_BOB, "bob"), (D_CAROL, "carol"), (D_MALLORY, "mallory")):
            fake.add_member(user, name)
        text = followup_text(await command(fake, D_MALLORY, "request",
                                           action="rollout restart deployment/coredns -n kube-system"))
        assert text.startswith("📝 R-1"), text
        card = await wait_card(fake, "R-1")
        jump = f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{card['id']}"
        for user in (D_ALICE, D_BOB, D_CAROL):
            dm = await fake.wait_for(lambda u=user: fake.dm_messages(u) or None)
            assert len(dm) == 1 and "critical" in dm[0]["content"] and dm[0]["content"].endswith(jump)
        assert fake.dm_messages(D_MALLORY) == []
