"""Starting and stopping the Discord adapter inside the service (`signoff run`).

`start_discord(app, settings)` points discord.py at DISCORD_API_URL / DISCORD_GATEWAY_URL,
logs in (which registers the buttons and syncs `/signoff`), connects the gateway in a task
group it owns, waits for READY, then registers the outbox gateway and DISCORD_CHANNEL_ID with
the app. On exit it stops taking events, lets in-flight handlers finish, and closes the client.
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

from adapters.discord.client import SignoffClient
from adapters.discord.gateway import DEFAULT_REQUEST_TIMEOUT_S, DiscordGateway
from adapters.discord.translate import PLATFORM
from bot.bootstrap import App
from bot.settings import Settings
from core.errors import SignoffError

log = structlog.get_logger(__name__)


@dataclass
class DiscordRuntime:
    client: SignoffClient
    gateway: DiscordGateway


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
async def start_discord(
    app: App, settings: Settings, *, guild_ready_timeout: float = 2.0, ready_timeout: float = 60.0,
    drain_timeout: float = 10.0, request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
) -> AsyncIterator[DiscordRuntime]:
    """Run the Discord adapter for the duration of the block (see the module docstring).

    `guild_ready_timeout` is how long discord.py waits for more guilds after the last GUILD_CREATE
    before READY counts as complete (tests pass a few ms).
    """
    if settings.discord_bot_token is None:
        raise SignoffError("DISCORD_BOT_TOKEN is not set: there is no Discord bot to start.")
    token = settings.discord_bot_token.get_secret_value()
    guild_id = _snowflake("DISCORD_GUILD_ID", settings.discord_guild_id)
    channel_id = _snowflake("DISCORD_CHANNEL_ID", settings.discord_channel_id)
    with pointed_at(settings.discord_api_url, settings.discord_gateway_url):
        client = SignoffClient(chat=app.chat, guild_id=guild_id, guild_ready_timeout=guild_ready_timeout)
        gateway = DiscordGateway(client, request_timeout=request_timeout)
        try:
            async with asyncio.TaskGroup() as group:
                client.attach(group)
                try:
                    await client.login(token)
                    connection = group.create_task(client.connect(reconnect=True), name="discord-gateway")
                    await _until_ready(group, client, connection, ready_timeout)
                    app.add_gateway(gateway, str(channel_id) if channel_id is not None else None)
                    log.info("discord.started", user_id=client.user.id if client.user else None,
                             guild_id=guild_id, channel_id=channel_id, commands_synced=client.commands_synced)
                    yield DiscordRuntime(client=client, gateway=gateway)
                finally:
                    # Without a gateway the outbox keeps Discord's messages for later instead of failing them.
                    if app.dispatcher.gateways.get(PLATFORM) is gateway:
                        del app.dispatcher.gateways[PLATFORM]
                    await client.drain(drain_timeout)
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


def _snowflake(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise SignoffError(f"{name} must be a numeric Discord id (Developer Mode → Copy ID), not {value[:30]!r}.") \
            from None
