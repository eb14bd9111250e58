"""Discord in `signoff run` (and in the tests and benches that run it the same way)."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

from adapters.discord.runtime import DiscordConfig, DiscordSeat, lead_discord
from bot.bootstrap import App
from bot.settings import Settings
from core.app.leader import Leadership
from core.errors import SignoffError

# The one lease the replicas share for the Discord gateway session (table `leases`).
DISCORD_LEASE = "discord-gateway"


def discord_config(settings: Settings, **tuning: Any) -> DiscordConfig:
    """DISCORD_* settings as the adapter's config; `tuning` sets the adapter's timeouts (tests shorten them)."""
    if settings.discord_bot_token is None:
        raise SignoffError("DISCORD_BOT_TOKEN is not set: there is no Discord bot to start.")
    return DiscordConfig(
        bot_token=settings.discord_bot_token.get_secret_value(),
        api_url=settings.discord_api_url,
        gateway_url=settings.discord_gateway_url,
        guild_id=_snowflake("DISCORD_GUILD_ID", settings.discord_guild_id),
        channel_id=_snowflake("DISCORD_CHANNEL_ID", settings.discord_channel_id),
        **tuning,
    )


def discord_leadership(app: App, **timing: float) -> Leadership:
    """This process's seat in the election for the Discord session; `timing` overrides the lease's TTL,
    renewal, polling and safety margin (tests shorten them)."""
    owner = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    return Leadership(app.db, app.clock, name=DISCORD_LEASE, owner=owner, **timing)


@contextlib.asynccontextmanager
async def start_discord(
    app: App, settings: Settings | None = None, *, guild_ready_timeout: float = 2.0,
    leadership: Leadership | None = None,
) -> AsyncIterator[DiscordSeat]:
    """Discord on a bootstrapped App for the duration of the block, connected while this replica holds the
    Discord lease: one replica at a time holds the gateway session, the others wait and take over.

    When the lease is free on entry (one replica, or the first), it is connected and READY on entry, its
    outbox gateway registered (DISCORD_CHANNEL_ID is the channel for API and alert requests); otherwise it
    connects once it wins the lease. Stopped, and the lease given up, on exit.

    `settings` defaults to the App's; `guild_ready_timeout` is how long discord.py waits for more guilds
    after the last GUILD_CREATE (tests pass a few ms).
    """
    config = discord_config(settings or app.settings, guild_ready_timeout_s=guild_ready_timeout)
    async with lead_discord(config, app.chat, app.gateways, leadership or discord_leadership(app)) as seat:
        yield seat


def _snowflake(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise SignoffError(f"{name} must be a numeric Discord id (Developer Mode → Copy ID), not {value[:30]!r}.") \
            from None
