"""Starting and stopping the Discord adapter inside the service (`signoff run`).

`run_discord(config, chat, gateways)` points discord.py at the configured REST and gateway
URLs, logs in (which registers the buttons and syncs `/signoff`), connects the gateway in a
task group it owns, waits for READY, then registers the outbox gateway and the configured
channel through the `GatewayRegistry` port. On exit it unregisters the gateway, stops taking
events, lets in-flight handlers finish, and closes the client. bot/chats/discord.py builds
the `DiscordConfig` from settings.

With several replicas, `lead_discord(config, chat, gateways, leadership)` runs `run_discord`
only while this replica holds the Discord lease (`core.app.leader.Leadership`): a follower
never connects to the gateway, and a leader that loses the lease disconnects. Only the leader
registers the outbox gateway, so Discord's messages are delivered by the replica that holds the
session (the outbox only takes messages for platforms with a registered gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import discord
import discord.gateway
import discord.http
import structlog
import yarl
from pydantic import BaseModel, ConfigDict, Field

from adapters.discord.client import SignoffClient
from adapters.discord.gateway import DEFAULT_REQUEST_TIMEOUT_S, DiscordGateway
from adapters.discord.translate import PLATFORM
from core.app.handlers import ChatCommands
from core.app.leader import Leadership
from core.errors import SignoffError
from core.ports import GatewayRegistry

log = structlog.get_logger(__name__)


class DiscordConfig(BaseModel):
    """What the Discord adapter needs to know, and nothing else.

    `guild_ready_timeout_s` is how long discord.py waits for more guilds after the last
    GUILD_CREATE before READY counts as complete (tests use a few ms).
    """

    model_config = ConfigDict(frozen=True)

    bot_token: str = Field(repr=False)
    api_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg"
    guild_id: int | None = None
    channel_id: int | None = None
    guild_ready_timeout_s: float = 2.0
    ready_timeout_s: float = 60.0
    drain_timeout_s: float = 10.0
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S


@dataclass
class DiscordRuntime:
    client: SignoffClient
    gateway: DiscordGateway


@dataclass
class DiscordSeat:
    """This replica's part in Discord: `runtime` is the connected adapter while it leads, else None."""

    leadership: Leadership
    runtime: DiscordRuntime | None = None


@contextlib.contextmanager
def pointed_at(api_url: str, gateway_url: str) -> Iterator[None]:
    """discord.py reads its REST base and gateway URL from class attributes at request/connect time."""
    route, socket = discord.http.Route, discord.gateway.DiscordWebSocket
    old_base, old_gateway = route.BASE, socket.DEFAULT_GATEWAY
    base, gateway = api_url.rstrip("/"), yarl.URL(gateway_url)
    route.BASE = base
    socket.DEFAULT_GATEWAY = gateway
    try:
        yield
    finally:
        # Put the old values back unless someone else has changed them since.
        if route.BASE is base:
            route.BASE = old_base
        if socket.DEFAULT_GATEWAY is gateway:
            socket.DEFAULT_GATEWAY = old_gateway


@contextlib.asynccontextmanager
async def run_discord(
    config: DiscordConfig, chat: ChatCommands, gateways: GatewayRegistry,
) -> AsyncIterator[DiscordRuntime]:
    """Run the Discord adapter for the duration of the block (see the module docstring)."""
    with pointed_at(config.api_url, config.gateway_url):
        client = SignoffClient(chat=chat, guild_id=config.guild_id, channel_id=config.channel_id,
                               guild_ready_timeout=config.guild_ready_timeout_s)
        gateway = DiscordGateway(client, request_timeout=config.request_timeout_s)
        channel = str(config.channel_id) if config.channel_id is not None else None
        try:
            async with asyncio.TaskGroup() as group:
                client.attach(group)
                try:
                    await client.login(config.bot_token)
                    connection = group.create_task(client.connect(reconnect=True), name="discord-gateway")
                    await _until_ready(group, client, connection, config.ready_timeout_s)
                    gateways.register(gateway, channel)
                    log.info("discord.started", user_id=client.user.id if client.user else None,
                             guild_id=config.guild_id, channel_id=config.channel_id,
                             commands_synced=client.commands_synced)
                    yield DiscordRuntime(client=client, gateway=gateway)
                finally:
                    # Without a gateway the outbox keeps Discord's messages for later instead of failing them.
                    gateways.unregister(gateway)
                    await client.drain(config.drain_timeout_s)
                    await client.close()
        except* discord.LoginFailure:
            raise SignoffError("Discord refused DISCORD_BOT_TOKEN (401): copy the bot token again from the "
                               "Developer Portal (Bot → Reset Token).") from None
        except* discord.PrivilegedIntentsRequired:
            raise SignoffError("Discord refused the Message Content intent (close code 4014): enable "
                               "\"Message Content Intent\" under Bot → Privileged Gateway Intents in the "
                               "Developer Portal.") from None
        finally:
            if not client.is_closed():
                await client.close()
    log.info("discord.stopped")


async def _until_ready(
    group: asyncio.TaskGroup, client: SignoffClient, connection: asyncio.Task[None], timeout: float,
) -> None:
    ready = group.create_task(client.wait_until_ready(), name="discord-ready")
    try:
        done, _ = await asyncio.wait({ready, connection}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()  # a no-op when it is done; the group awaits it either way
    if connection in done:
        connection.result()  # raises what ended the connection (bad intents, bad token…)
        raise SignoffError("The Discord gateway connection ended before it was ready.")
    if ready not in done:
        raise SignoffError(f"Discord did not become ready within {timeout:.0f} s; check DISCORD_GATEWAY_URL "
                           "and that the bot is in a guild.")


# After a failed session (Discord unreachable, a gateway error), wait this long before trying again, so
# that a persistent fault does not make the replicas hand the lease around in a tight loop.
RETRY_AFTER_FAILURE_S = 5.0


@contextlib.asynccontextmanager
async def lead_discord(
    config: DiscordConfig, chat: ChatCommands, gateways: GatewayRegistry, leadership: Leadership,
) -> AsyncIterator[DiscordSeat]:
    """Discord for the duration of the block, connected only while this replica leads.

    On entry one attempt at the lease: the leader connects before the block starts (so a refused
    token or intent still stops start-up with its sentence); a follower enters at once and waits
    in the background. Either way a background task then keeps the lease, disconnects when it
    is lost, and connects again when this replica leads again. On exit: disconnect, then give
    the lease up so that a follower takes over at its next poll.
    """
    seat = DiscordSeat(leadership=leadership)
    if config.channel_id is not None:
        # Also on a follower: its API and alert requests queue their Discord card for the leader to deliver.
        gateways.place(PLATFORM, str(config.channel_id))
    stop = asyncio.Event()
    first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    leading = await leadership.attempt()
    if not leading:
        first.set_result(None)
        log.info("discord.following", lease=leadership.name, owner=leadership.owner)
    task = asyncio.create_task(_seat_loop(config, chat, gateways, seat, stop, first), name="discord-leadership")
    task.add_done_callback(_report_early_end)
    try:
        await asyncio.shield(first)
        yield seat
    finally:
        stop.set()
        await _finish(task)
        await leadership.resign()


async def _finish(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(Exception):  # already logged by _report_early_end; the service still stops cleanly
        await task


def _report_early_end(task: asyncio.Task[None]) -> None:
    # Said when it happens: a dead loop means no Discord on this replica until it restarts.
    if not task.cancelled() and task.exception() is not None:
        log.error("discord.leadership_stopped", error=repr(task.exception())[:300])


async def _seat_loop(
    config: DiscordConfig, chat: ChatCommands, gateways: GatewayRegistry, seat: DiscordSeat,
    stop: asyncio.Event, first: asyncio.Future[None],
) -> None:
    leadership = seat.leadership
    while not stop.is_set():
        if not leadership.is_leader and not await leadership.campaign(stop):
            return
        # The lease is renewed from the moment it is won, also while the session is still connecting.
        holder = asyncio.create_task(leadership.hold(stop), name="discord-lease")
        ready, end = asyncio.Event(), asyncio.Event()
        session = asyncio.create_task(_session(config, chat, gateways, seat, ready, end, first), name="discord-session")
        await asyncio.wait({holder, session}, return_when=asyncio.FIRST_COMPLETED)
        if not holder.done():  # the session ended on its own
            holder.cancel()
        elif not session.done():  # the lease is lost, or the service stops
            if not holder.result():
                log.warning("discord.leadership_lost", lease=leadership.name, owner=leadership.owner)
            end.set()
            if not ready.is_set():
                session.cancel()  # still connecting: nothing in flight to drain
        await asyncio.wait({holder, session})
        seat.runtime = None
        failure = None if session.cancelled() else session.exception()
        if failure is None:
            continue
        if not first.done():
            first.set_exception(failure)  # start-up: the caller raises it (a refused token…)
            return
        # Later, the session ended on its own (Discord unreachable, a token reset meanwhile): hand the lease on
        # and try again after a pause.
        log.error("discord.session_failed", error=str(failure)[:300], lease=leadership.name)
        await leadership.resign()
        if await _sleep_or_stop(stop, RETRY_AFTER_FAILURE_S):
            return


async def _session(
    config: DiscordConfig, chat: ChatCommands, gateways: GatewayRegistry, seat: DiscordSeat,
    ready: asyncio.Event, end: asyncio.Event, first: asyncio.Future[None],
) -> None:
    """One gateway session: connected, READY and registered until `end` is set."""
    async with run_discord(config, chat, gateways) as runtime:
        seat.runtime = runtime
        ready.set()
        if not first.done():
            first.set_result(None)
        log.info("discord.leading", lease=seat.leadership.name, owner=seat.leadership.owner)
        await end.wait()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()
