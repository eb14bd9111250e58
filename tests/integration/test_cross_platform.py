"""One request, both platforms (issue 4 item 8): Slack and Discord attached to one App, as
`signoff run` does when both are configured, each over loopback against its fake.

Why: a signature is by a person, not an account. Alice signing in Slack and Bob in Discord must
reach a quorum of 2 together; Alice cannot sign again through Discord; and both cards, rendered
by two different adapters from the same request, must end in the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from adapters.slack import EVENTS_PATH
from bot.bootstrap import App
from bot.chats.discord import start_discord
from bot.chats.slack import attach_slack
from bot.http import HttpServer, build_http_app
from core.domain.approvals import RequestStatus
from core.domain.events import EventType
from testkit.fakes.discord import FakeDiscord, InteractionReply
from testkit.fakes.slack import FakeSlack
from testkit.support import make_settings, running_app
from testkit.support.policy import team_policy
from testkit.support.slack import SECRET, SlackWorld, buttons, card_text

SLACK_CHANNEL = "C0OPS"
ALICE_SLACK, BOB_SLACK, CAROL_SLACK = "U0ALICE", "U0BOB", "U0CAROL"
ALICE_DISCORD, BOB_DISCORD, CAROL_DISCORD = "111111111111111111", "222222222222222222", "333333333333333333"

POLICY = team_policy(
    slack={"alice": ALICE_SLACK, "bob": BOB_SLACK, "carol": CAROL_SLACK},
    discord={"alice": ALICE_DISCORD, "bob": BOB_DISCORD, "carol": CAROL_DISCORD},
    groups={"carol": ["sre"]}, rules='[risk.high]\nquorum = 2\napprovers = ["sre"]\n')


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    # The adapters are what is tested here; the core's PostgreSQL variant has its own tests.
    return sqlite_database_url


@dataclass
class Both:
    app: App
    slack: SlackWorld
    discord: FakeDiscord


@contextlib.asynccontextmanager
async def both_platforms(database_url: str) -> AsyncIterator[Both]:
    """Slack (HTTP mode) and Discord on one App, wired the way `run_service` wires them."""
    before = asyncio.all_tasks()
    async with FakeSlack() as slack_fake, FakeDiscord() as discord_fake, contextlib.AsyncExitStack() as stack:
        for uid, name in ((ALICE_DISCORD, "alice"), (BOB_DISCORD, "bob"), (CAROL_DISCORD, "carol")):
            discord_fake.add_member(uid, name)
        settings = make_settings(
            database_url,
            SLACK_BOT_TOKEN=slack_fake.bot_token, SLACK_API_URL=slack_fake.api_url, SLACK_CHANNEL=SLACK_CHANNEL,
            SLACK_SIGNING_SECRET=SECRET,
            DISCORD_BOT_TOKEN=discord_fake.token, DISCORD_API_URL=discord_fake.api_url,
            DISCORD_GATEWAY_URL=discord_fake.gateway_url, DISCORD_CHANNEL_ID=discord_fake.channel_id,
            DISCORD_GUILD_ID=discord_fake.guild_id,
        )
        app = await stack.enter_async_context(running_app(settings, policy=POLICY))
        await app.maintenance.recover(sole_worker=app.db.sole_worker)
        http = build_http_app(app)
        slack = attach_slack(app, http)
        await stack.enter_async_context(slack.running())
        await stack.enter_async_context(start_discord(app, settings, guild_ready_timeout=0.05))
        await stack.enter_async_context(app.background())
        server = HttpServer(http, "127.0.0.1", 0)
        await server.start()
        stack.push_async_callback(server.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        base_url = f"http://127.0.0.1:{server.port}"
        world = SlackWorld(app=app, fake=slack_fake, slack=slack, base_url=base_url,
                           events_url=base_url + EVENTS_PATH, session=session)
        yield Both(app=app, slack=world, discord=discord_fake)
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before
              if not t.done() and t is not asyncio.current_task() and not _is_test(t)]
    assert not leaked, leaked
    for thread in [t for t in threading.enumerate() if t.__class__.__name__ == "KeepAliveHandler"]:
        thread.join(1.0)


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` (state of either fake) until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:  # polled: the state lives in two fakes and the database, with no event to wait on
            result = _quiet(check)
            if result:
                return result
            await asyncio.sleep(0.02)


def _quiet(check: Callable[[], Any]) -> Any:
    try:
        return check()
    except (AssertionError, KeyError, IndexError):
        return None


async def answered(fake: FakeDiscord, sent: dict[str, Any]) -> list[InteractionReply]:
    """The callback and the first follow-up of an interaction, once both arrived."""
    replies: list[InteractionReply] = await fake.wait_for(
        lambda: replies if len(replies := fake.interaction_responses(sent["id"])) >= 2 else None)
    return replies


async def discord_click(fake: FakeDiscord, user: str, message_id: str, custom_id: str) -> str:
    replies = await answered(fake, await fake.click(user, message_id, custom_id))
    assert replies[0].ephemeral and replies[1].ephemeral
    return str(replies[1].json.get("content"))


def discord_card(fake: FakeDiscord, request_id: str) -> dict[str, Any] | None:
    return next((m for m in fake.messages() if m["embeds"] and f" {request_id} " in m["embeds"][0]["title"] + " "),
                None)


def discord_buttons(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


async def test_one_quorum_across_slack_and_discord(database_url: str) -> None:
    async with both_platforms(database_url) as both:
        app, slack, discord = both.app, both.slack, both.discord

        # Carol asks in Discord; the card appears there and in Slack's channel.
        sent = await discord.slash_command(CAROL_DISCORD, "signoff", {
            "action": "rollout restart deployment/api -n prod", "risk": "high", "reason": "api is slow",
        }, subcommand="request")
        replies = await answered(discord, sent)
        assert str(replies[1].json["content"]).startswith("📝 R-1 posted")
        card = await until(lambda: (m := discord_card(discord, "R-1")) and str(m["id"]) in discord.threads and m)
        await until(lambda: slack.card("R-1"))
        assert "▱▱ 0/2" in card_text(slack.card("R-1"))

        # Alice signs in Slack: both cards show 1/2.
        assert await slack.click(ALICE_SLACK, "approve", "R-1") == 200
        await until(lambda: any("You signed R-1" in t for t in slack.private_texts(ALICE_SLACK)))
        await until(lambda: "▰▱ 1/2" in card_text(slack.card("R-1")))
        await until(lambda: "▰▱ 1/2" in (discord_card(discord, "R-1") or {"embeds": [{}]})["embeds"][0]
                    .get("description", ""))

        # The same person through the other platform is refused, privately and saying why.
        refused = await discord_click(discord, ALICE_DISCORD, card["id"], "signoff:approve:R-1")
        assert refused.startswith("You already signed R-1 (1/2); one person signs once, whichever chat they use.")

        # Bob signs in Discord: quorum 2 with Alice's Slack signature; it runs once.
        signed = await discord_click(discord, BOB_DISCORD, card["id"], "signoff:approve:R-1")
        assert signed.startswith("✍️ You signed R-1 (▰▰ 2/2): quorum reached")

        final_discord = await until(lambda: (m := discord_card(discord, "R-1")) and m["components"] == []
                                    and "SUCCEEDED" in m["embeds"][0]["description"] and m)
        final_slack = await until(lambda: (m := slack.card("R-1")) and buttons(m) == []
                                  and "SUCCEEDED" in card_text(m) and m)
        await until(lambda: any("R-1 succeeded" in t for t in slack.thread_texts("R-1")))
        thread = discord.threads[str(card["id"])]
        await until(lambda: any("R-1 succeeded" in m["content"] for m in discord.thread_messages(thread)))

        # Both cards tell the same story: state, progress and signers.
        embed = final_discord["embeds"][0]
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert "▰▰ 2/2" in embed["description"] and "▰▰ 2/2" in card_text(final_slack)
        assert fields["Signed by"] == "alice (slack), bob (discord)"
        assert "alice (slack), bob (discord)" in card_text(final_slack)
        request = await app.service.get("R-1")
        assert request.status is RequestStatus.succeeded
        assert [s.person for s in request.signatures] == ["alice", "bob"]
        assert sum(1 for e in await app.service.timeline("R-1") if e.type is EventType.executed) == 1
        assert "kubectl.kubernetes.io/restartedAt" in (
            app.sandbox.get("deployment", "prod", "api")["spec"]["template"]["metadata"]["annotations"])
        assert discord_buttons(card) == ["signoff:approve:R-1", "signoff:comment:R-1", "signoff:reject:R-1"]


def _is_test(task: asyncio.Task[object]) -> bool:
    """pytest-asyncio's task running the test itself, not something the test left behind."""
    return str(getattr(task.get_coro(), "__name__", "")).startswith("test_")
