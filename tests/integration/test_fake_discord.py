"""Tests of the Discord fake, driven by a real discord.py client it must satisfy.

Why: later adapter tests trust this fake; if it answered differently from Discord (or in a shape
discord.py 2.7 rejects) they would pass against a Discord that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from testkit.fakes.discord import (
    INTENT_MESSAGE_CONTENT,
    FakeDiscord,
    point_discord_py_at,
)

ALICE = "111111111111111111"
BOB = "222222222222222222"
TEMPLATE = r"signoff:(?P<action>approve|reject):(?P<rid>R-\d+)"
MESSAGES = r"/channels/\d+/messages"


class SignButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TEMPLATE):
    """The shape of signoff's persistent Approve / Reject buttons."""

    def __init__(self, action: str, rid: str) -> None:
        style = discord.ButtonStyle.success if action == "approve" else discord.ButtonStyle.danger
        super().__init__(
            discord.ui.Button(label=action.title(), style=style, custom_id=f"signoff:{action}:{rid}")
        )
        self.action = action
        self.rid = rid

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SignButton:
        return cls(match["action"], match["rid"])

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        assert isinstance(client, Bot)
        client.clicks.append((self.action, self.rid, interaction.user.id))
        if client.click_mode == "update":  # type 7: the card itself changes, buttons removed
            await interaction.response.edit_message(content=f"{self.rid}: {self.action}d", view=None)
        elif client.click_mode == "defer":  # type 6, then PATCH @original (= the clicked card)
            await interaction.response.defer()
            await interaction.edit_original_response(content=f"{self.rid}: signed 1/2")
            await interaction.followup.send("signature recorded", ephemeral=True)
        else:
            await interaction.response.send_message(f"{self.action} of {self.rid} recorded", ephemeral=True)


def card_view(rid: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(SignButton("approve", rid))
    view.add_item(SignButton("reject", rid))
    return view


class Bot(discord.Client):
    """A minimal client shaped like signoff's adapter: a /signoff group, DynamicItem buttons."""

    def __init__(self, guild_id: int, *, message_content: bool = True, members: bool = False) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        intents.members = members
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.clicks: list[tuple[str, str, int]] = []
        self.statuses: list[str] = []
        self.seen: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.reactions: asyncio.Queue[discord.RawReactionActionEvent] = asyncio.Queue()
        self.resumed = asyncio.Event()
        self.click_mode = "ephemeral"
        self.edits: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.ready_count = 0

        group = app_commands.Group(name="signoff", description="Approvals for Kubernetes operations")

        @group.command(name="status", description="Show a request")
        @app_commands.describe(request_id="A request id such as R-42")
        async def status(interaction: discord.Interaction, request_id: str) -> None:
            await interaction.response.defer(thinking=True)
            self.statuses.append(request_id)
            await interaction.followup.send(f"{request_id} is pending")

        self.tree.add_command(group, guild=discord.Object(guild_id))

    async def setup_hook(self) -> None:
        self.add_dynamic_items(SignButton)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every re-IDENTIFY (after INVALID_SESSION); tests need not."""

    async def on_ready(self) -> None:
        self.ready_count += 1

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        self.seen.put_nowait(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.reactions.put_nowait(payload)

    async def on_message_edit(self, before: discord.Message, after: discord.Message) -> None:
        self.edits.put_nowait(after)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    before = asyncio.all_tasks()
    async with FakeDiscord() as server:
        with point_discord_py_at(server):
            server.add_role("sre")
            server.add_member(ALICE, "alice", roles=["sre"])
            server.add_member(BOB, "bob", roles=["sre"])
            yield server
    await asyncio.sleep(0.05)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    assert not leaked, leaked
    keepalives = [t for t in threading.enumerate() if t.__class__.__name__ == "KeepAliveHandler"]
    for thread in keepalives:
        thread.join(1.0)
    assert not [t for t in keepalives if t.is_alive()]


@contextlib.asynccontextmanager
async def running(server: FakeDiscord, *, message_content: bool = True) -> AsyncIterator[Bot]:
    """Log a fresh client in, connect it in a task, wait for on_ready; close it afterwards."""
    bot = Bot(int(server.guild_id), message_content=message_content)
    await bot.login(server.token)
    task = asyncio.create_task(bot.connect())
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, 5)


async def next_item(queue: asyncio.Queue[Any], timeout: float = 3.0) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


def text_channel(bot: Bot, server: FakeDiscord) -> discord.TextChannel:
    channel = bot.get_channel(int(server.channel_id))
    assert isinstance(channel, discord.TextChannel)
    return channel


# ---------------------------------------------------------------------------------- login and gateway


async def test_login_identify_ready_and_guild_cache(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        assert bot.user is not None and bot.user.id == int(fake.bot_user_id) and bot.user.bot
        assert bot.application_id == int(fake.application_id)
        guild = bot.get_guild(int(fake.guild_id))
        assert guild is not None and not guild.unavailable
        assert text_channel(bot, fake).name == "ops"
        assert {r.name for r in guild.roles} >= {"@everyone", "sre", "signoff"}
        assert guild.get_member(int(ALICE)) is None  # no members intent: only the bot is sent
        assert guild.me is not None

        assert [c.path for c in fake.calls[:2]] == ["/users/@me", "/oauth2/applications/@me"]
        assert fake.calls[0].headers["Authorization"] == f"Bot {fake.token}"
        assert fake.intents == bot.intents.value
        assert fake.intents is not None and fake.intents & INTENT_MESSAGE_CONTENT
        # discord.py asks for zlib-stream, yet reads the fake's plain JSON text frames.
        assert fake.gateway_connects[0]["compress"] == "zlib-stream"
        assert fake.gateway_connects[0]["encoding"] == "json"
        assert [f.op for f in fake.gateway_received[:2]] == [1, 2]  # first heartbeat, then IDENTIFY
        assert [f["t"] for f in fake.gateway_sent[:2]] == ["READY", "GUILD_CREATE"]
        assert [f["s"] for f in fake.gateway_sent[:2]] == [1, 2]
        assert await fake.wait_ready(1.0) == 1


async def test_members_intent_gets_members_without_chunking(fake: FakeDiscord) -> None:
    bot = Bot(int(fake.guild_id), members=True)  # chunk_guilds_at_startup follows the intent
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect())
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        guild = bot.get_guild(int(fake.guild_id))
        assert guild is not None and guild.chunked
        member = guild.get_member(int(ALICE))
        assert member is not None and [r.name for r in member.roles[1:]] == ["sre"]
        assert not [f for f in fake.gateway_received if f.op == 8]
    finally:
        await bot.close()
        await asyncio.wait_for(task, 5)


async def test_gateway_drop_is_resumed_and_missed_events_replayed(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        assert await fake.disconnect_clients() == 1
        # Sent while the client is away: replayed on RESUME, as Discord does.
        await fake.post_user_message(ALICE, fake.channel_id, "while you were away")
        await asyncio.wait_for(bot.resumed.wait(), 5)
        message = await next_item(bot.seen)
        assert message.content == "while you were away"
        resume = [f for f in fake.gateway_received if f.op == 6]
        assert len(resume) == 1 and resume[0].d["session_id"] == bot.ws.session_id
        assert len(fake.identifies) == 1 and bot.ready_count == 1


async def test_invalid_session_makes_the_client_identify_again(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        await fake.invalidate_sessions()
        await fake.disconnect_clients()
        await fake.wait_for(lambda: len(fake.identifies) == 2, 5)
        await fake.wait_for(lambda: bot.ready_count == 2, 5)
        assert bot.get_guild(int(fake.guild_id)) is not None


async def test_privileged_intents_not_enabled_close_4014(fake: FakeDiscord) -> None:
    fake.privileged_intents_allowed = False
    bot = Bot(int(fake.guild_id), message_content=True)
    await bot.login(fake.token)
    try:
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(bot.connect(), 5)
    finally:
        await bot.close()


# ---------------------------------------------------------------------------------- commands


async def test_tree_sync_bulk_overwrites_guild_commands(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        guild = discord.Object(int(fake.guild_id))
        synced = await bot.tree.sync(guild=guild)
        route = rf"/applications/{fake.application_id}/guilds/{fake.guild_id}/commands"
        assert len(fake.calls_to("PUT", route)) == 1
        stored = fake.commands(fake.guild_id)
        assert [c["name"] for c in stored] == ["signoff"]
        assert stored[0]["options"][0]["name"] == "status" and stored[0]["options"][0]["type"] == 1
        assert synced[0].id == int(stored[0]["id"])
        again = await bot.tree.sync(guild=guild)
        assert again[0].id == synced[0].id  # an overwrite keeps the id of a same-named command
        fetched = await bot.tree.fetch_commands(guild=guild)
        assert [c.name for c in fetched] == ["signoff"]


async def test_slash_command_defers_then_follows_up(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        await bot.tree.sync(guild=discord.Object(int(fake.guild_id)))
        sent = await fake.slash_command(ALICE, "signoff", {"request_id": "R-7"}, subcommand="status")
        assert sent["data"]["options"] == [
            {"type": 1, "name": "status", "options": [{"name": "request_id", "type": 3, "value": "R-7"}]}
        ]
        assert sent["data"]["guild_id"] == fake.guild_id
        await fake.wait_for(("POST", rf"/webhooks/{fake.application_id}/[^/]+"))
        assert bot.statuses == ["R-7"]

        replies = fake.interaction_responses(sent["id"])
        assert [(r.kind, r.type) for r in replies] == [("callback", 5), ("followup", None)]
        callback = fake.calls_to("POST", rf"/interactions/{sent['id']}/.+/callback")[0]
        assert callback.query == {"with_response": "1"} and "Authorization" not in callback.headers
        # The first follow-up after a "thinking" defer replaces the loading message.
        assert replies[1].message_id == replies[0].message_id
        final = fake.messages(fake.channel_id)
        assert [m["content"] for m in final] == ["R-7 is pending"]
        assert final[0]["flags"] == 0 and final[0]["type"] == 20

        with pytest.raises(ValueError, match="no option"):
            await fake.slash_command(ALICE, "signoff", {"id": "R-7"}, subcommand="status")
        with pytest.raises(ValueError, match="missing required"):
            await fake.slash_command(ALICE, "signoff", {}, subcommand="status")


# ---------------------------------------------------------------------------------- buttons, cards, threads


async def test_click_on_bot_message_reaches_dynamic_item(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        card = await text_channel(bot, fake).send("R-1: restart api", view=card_view("R-1"))
        stored = fake.message(card.id)
        custom_ids = [c["custom_id"] for c in stored["components"][0]["components"]]
        assert custom_ids == ["signoff:approve:R-1", "signoff:reject:R-1"]

        click = await fake.click(BOB, card.id, "signoff:approve:R-1")
        assert click["message"]["id"] == str(card.id) and click["data"]["component_type"] == 2
        await fake.wait_for(("POST", rf"/interactions/{click['id']}/[^/]+/callback"))
        assert bot.clicks == [("approve", "R-1", int(BOB))]
        [reply] = fake.interaction_responses(click["id"])
        assert reply.type == 4 and reply.ephemeral and reply.json["data"]["flags"] == 64
        assert fake.message(reply.message_id or "")["content"] == "approve of R-1 recorded"
        assert [m["id"] for m in fake.messages()] == [str(card.id)]  # ephemeral: not in the channel

        with pytest.raises(ValueError, match="no component"):
            await fake.click(BOB, card.id, "signoff:approve:R-2")


async def test_click_updating_the_card_in_place(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        channel = text_channel(bot, fake)
        card = await channel.send("R-4: cordon node-1", view=card_view("R-4"))
        bot.click_mode = "update"
        click = await fake.click(ALICE, card.id, "signoff:approve:R-4")
        await fake.wait_for(("POST", rf"/interactions/{click['id']}/[^/]+/callback"))
        assert fake.message(card.id)["content"] == "R-4: approved"
        assert fake.message(card.id)["components"] == []
        edited = await next_item(bot.edits)  # MESSAGE_UPDATE reached the client's cache
        assert edited.id == card.id and edited.components == []

        other = await channel.send("R-6: restart api", view=card_view("R-6"))
        bot.click_mode = "defer"
        click = await fake.click(BOB, other.id, "signoff:approve:R-6")
        await fake.wait_for(("POST", rf"/webhooks/{fake.application_id}/[^/]+"))
        replies = fake.interaction_responses(click["id"])
        assert [(r.kind, r.type, r.ephemeral) for r in replies] == [
            ("callback", 6, False),
            ("edit_original", None, False),
            ("followup", None, True),
        ]
        assert fake.message(other.id)["content"] == "R-6: signed 1/2"
        assert fake.message(other.id)["components"][0]["components"][0]["custom_id"] == "signoff:approve:R-6"
        fetched = await channel.fetch_message(other.id)
        assert fetched.content == "R-6: signed 1/2" and fetched.edited_at is not None
        history = [m.id async for m in channel.history(limit=10)]
        assert history == [other.id, card.id]


async def test_card_embed_thread_and_thread_reply(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        embed = discord.Embed(title="restart deployment/api -n prod", description="risk: medium")
        embed.add_field(name="Signatures", value="▰▱ 1/2")
        card = await text_channel(bot, fake).send(embed=embed, view=card_view("R-3"))
        stored = fake.message(card.id)
        assert stored["embeds"][0]["title"] == "restart deployment/api -n prod"
        assert stored["embeds"][0]["fields"][0]["value"] == "▰▱ 1/2"

        thread = await card.create_thread(name="R-3", auto_archive_duration=1440)
        assert fake.threads[str(card.id)] == str(thread.id) == str(card.id)
        assert thread.parent_id == int(fake.channel_id)
        await fake.wait_for(lambda: bot.get_channel(thread.id) is not None)  # THREAD_CREATE arrived
        await thread.send("dry run passed")
        assert [m["content"] for m in fake.thread_messages(thread.id)] == ["dry run passed"]
        assert fake.message(card.id)["flags"] & 32  # HAS_THREAD

        await fake.post_user_message(ALICE, thread.id, "timeline")
        while (message := await next_item(bot.seen)).author.id != int(ALICE):
            pass
        assert message.content == "timeline"
        assert message.channel.id == thread.id and isinstance(message.channel, discord.Thread)

        with pytest.raises(discord.HTTPException) as excinfo:
            await card.create_thread(name="again")
        assert excinfo.value.code == 160004


async def test_message_content_only_with_the_intent(fake: FakeDiscord) -> None:
    async with running(fake, message_content=True) as reader, running(fake, message_content=False) as blind:
        await fake.post_user_message(ALICE, fake.channel_id, "hello signoff")
        assert (await next_item(reader.seen)).content == "hello signoff"
        assert (await next_item(blind.seen)).content == ""
        await fake.post_user_message(ALICE, fake.channel_id, f"<@{fake.bot_user_id}> status R-1")
        assert (await next_item(blind.seen)).content.endswith("status R-1")  # mentions are exempt


async def test_reactions_reach_on_raw_reaction_add(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        offer = await text_channel(bot, fake).send("Playbook PB-1: approve with ✅ or 👍")
        await offer.add_reaction("👍")
        own = await next_item(bot.reactions)
        assert bot.user is not None and own.user_id == bot.user.id
        assert len(fake.calls_to("PUT", rf"{MESSAGES}/{offer.id}/reactions/👍/@me")) == 1

        await fake.add_reaction(ALICE, fake.channel_id, offer.id, "✅")
        event = await next_item(bot.reactions)
        assert (event.user_id, event.message_id, str(event.emoji)) == (int(ALICE), offer.id, "✅")
        assert event.member is not None and event.member.name == "alice"
        counts = {r["emoji"]["name"]: (r["count"], r["me"]) for r in fake.message(offer.id)["reactions"]}
        assert counts == {"👍": (1, True), "✅": (1, False)}


# ---------------------------------------------------------------------------------- failures and retries


async def test_429_is_retried_by_discord_py_and_stored_once(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        fake.rate_limit("POST", MESSAGES, retry_after=0.3)
        started = time.monotonic()
        await text_channel(bot, fake).send("after a rate limit")
        assert time.monotonic() - started >= 0.3
        calls = fake.calls_to("POST", MESSAGES)
        assert [(c.status, c.fault) for c in calls] == [(429, "429"), (200, None)]
        assert calls[0].response == {
            "message": "You are being rate limited.",
            "retry_after": 0.3,
            "global": False,
        }
        assert [m["content"] for m in fake.messages()] == ["after a rate limit"]


async def test_server_errors_follow_discord_py_retry_rules(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        channel = text_channel(bot, fake)
        fake.fail("POST", MESSAGES, status=500)
        await channel.send("after a 500")  # retried after discord.py's 1 s sleep
        fake.fail("POST", MESSAGES, status=503)
        with pytest.raises(discord.DiscordServerError):
            await channel.send("503 is not retried")
        assert [m["content"] for m in fake.messages()] == ["after a 500"]
        assert [c.status for c in fake.calls_to("POST", MESSAGES)] == [500, 200, 503]


async def test_committed_failure_and_nonce_make_a_retry_idempotent(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        channel = text_channel(bot, fake)
        fake.fail("POST", MESSAGES, status=403, commit=True)  # lands, but the client sees a failure
        with pytest.raises(discord.Forbidden):
            await channel.send("card R-9", nonce="R-9:card")
        again = await channel.send("card R-9", nonce="R-9:card")  # discord.py sets enforce_nonce
        assert [m["id"] for m in fake.messages()] == [str(again.id)]


async def test_unknown_message_edit_is_404_10008(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        ghost = text_channel(bot, fake).get_partial_message(1234)
        with pytest.raises(discord.NotFound) as excinfo:
            await ghost.edit(content="nope")
        assert excinfo.value.code == 10008
        assert fake.calls_to("PATCH", rf"{MESSAGES}/1234")[0].failed


async def test_rest_wire_format(fake: FakeDiscord) -> None:
    auth = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.api_url}/users/@me", headers=auth) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["username"] == "signoff"
        async with http.get(f"{fake.api_url}/users/@me") as resp:
            assert resp.status == 401
        async with http.get(f"{fake.api_url}/nope", headers=auth) as resp:
            assert resp.status == 404 and await resp.json() == {"message": "404: Not Found", "code": 0}
        fake.rate_limit("GET", r"/channels/\d+", retry_after=1.5, global_=True)
        async with http.get(f"{fake.api_url}/channels/{fake.channel_id}", headers=auth) as resp:
            assert resp.status == 429 and resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["global"] is True
            assert resp.headers["Retry-After"] == "2" and resp.headers["X-RateLimit-Scope"] == "global"
            assert resp.headers["Via"] and resp.headers["X-RateLimit-Reset-After"] == "1.500"
        fake.delay("GET", r"/channels/\d+", 0.2, times=1)
        started = time.monotonic()
        async with http.get(f"{fake.api_url}/channels/{fake.channel_id}", headers=auth) as resp:
            assert resp.status == 200 and time.monotonic() - started >= 0.2
        fake.timeout("GET", r"/gateway", seconds=0.1)
        async with http.get(f"{fake.api_url}/gateway") as resp:
            assert resp.status == 504
        fake.fail_randomly(1.0, seed=3, kinds=("500",))
        async with http.get(f"{fake.api_url}/gateway") as resp:
            assert resp.status == 500
        fake.clear_faults()
        async with http.get(f"{fake.api_url}/gateway") as resp:
            assert await resp.json() == {"url": fake.gateway_url}
    assert [c.fault for c in fake.calls if c.fault] == ["429", "timeout", "500"]


async def test_interaction_answered_twice_or_late_is_refused(fake: FakeDiscord) -> None:
    sent = await fake.slash_command(ALICE, "signoff", {"request_id": "R-1"}, subcommand="status")
    url = f"{fake.api_url}/interactions/{sent['id']}/{sent['token']}/callback?with_response=1"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"type": 4, "data": {"content": "hi"}}) as resp:
            body = await resp.json()
            assert body["interaction"]["response_message_id"] == body["resource"]["message"]["id"]
        async with http.post(url, json={"type": 4, "data": {"content": "again"}}) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == 40060
        fake.interaction_deadline = 0.0
        late = await fake.slash_command(ALICE, "signoff", {"request_id": "R-2"}, subcommand="status")
        late_url = f"{fake.api_url}/interactions/{late['id']}/{late['token']}/callback"
        async with http.post(late_url, json={"type": 5}) as resp:
            assert resp.status == 404 and (await resp.json())["code"] == 10062


# ---------------------------------------------------------------------------------- restarts and threads


async def test_new_client_handles_clicks_on_old_cards(fake: FakeDiscord) -> None:
    async with running(fake) as first:
        card = await text_channel(first, fake).send("R-5: scale api", view=card_view("R-5"))
    async with running(fake) as second:
        click = await fake.click(ALICE, card.id, "signoff:reject:R-5")
        await fake.wait_for(("POST", rf"/interactions/{click['id']}/[^/]+/callback"))
        assert second.clicks == [("reject", "R-5", int(ALICE))]
        assert first.clicks == []
        assert len(fake.identifies) == 2 and fake.connected_sessions == 1


async def test_threaded_fake_driven_from_another_loop() -> None:
    with FakeDiscord.running_in_thread() as server:
        server.add_member(ALICE, "alice")
        with point_discord_py_at(server):
            async with running(server) as bot:
                assert await server.wait_ready(2.0) >= 1
                await server.post_user_message(ALICE, server.channel_id, "from the test loop")
                assert (await next_item(bot.seen)).content == "from the test loop"
                call = await server.wait_for("GET /oauth2/applications/@me")
                assert call.status == 200
        assert server.run_sync(server.dispatch("TYPING_START", {})) == {}


SUBPROCESS_BOT = """
import asyncio, sys
import discord, yarl

api_url, gateway_url, token, channel_id = sys.argv[1:5]
discord.http.Route.BASE = api_url
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class Bot(discord.Client):
    async def on_ready(self) -> None:
        await self.get_channel(int(channel_id)).send("hello from a subprocess")
        await self.close()


asyncio.run(Bot(intents=discord.Intents.default(), guild_ready_timeout=0.05).start(token))
"""


def test_bot_in_a_subprocess_against_the_threaded_fake() -> None:
    with FakeDiscord.running_in_thread() as server:
        argv = [server.api_url, server.gateway_url, server.token, server.channel_id]
        done = subprocess.run(
            [sys.executable, "-c", SUBPROCESS_BOT, *argv],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert [m["content"] for m in server.messages()] == ["hello from a subprocess"]
        assert server.run_sync(server.wait_for(("POST", MESSAGES))).status == 200
        assert server.connected_sessions == 0
