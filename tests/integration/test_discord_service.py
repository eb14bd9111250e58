"""`signoff run` (run_service) with DISCORD_BOT_TOKEN: the adapter starts, serves, and stops cleanly;
start-up refuses a bad token or a missing Message Content intent with a sentence saying what to fix."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator

import pytest

from bot.chats.discord import start_discord
from bot.service import run_service
from core.errors import SignoffError
from testkit.fakes.discord import FakeDiscord
from testkit.support import make_settings, running_app

ALICE = "111111111111111111"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    # run_service installs SIGINT/SIGTERM handlers on the test's loop; put the previous ones back.
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        signal.signal(sig, handler)


def discord_env(fake: FakeDiscord) -> dict[str, str]:
    return {"DISCORD_BOT_TOKEN": fake.token, "DISCORD_API_URL": fake.api_url, "DISCORD_GATEWAY_URL": fake.gateway_url,
            "DISCORD_CHANNEL_ID": fake.channel_id, "DISCORD_GUILD_ID": fake.guild_id}


async def test_run_service_serves_discord(sqlite_database_url: str) -> None:
    async with FakeDiscord() as fake:
        fake.add_member(ALICE, "alice")
        env = {**discord_env(fake), "SIGNOFF_HTTP_HOST": "127.0.0.1", "SIGNOFF_HTTP_PORT": str(free_port())}
        stop = asyncio.Event()
        service = asyncio.create_task(run_service(make_settings(sqlite_database_url, **env), stop))
        try:
            # Commands are synced before the gateway connects; READY follows.
            await fake.wait_for(lambda: fake.commands(fake.guild_id), timeout=20)
            await fake.wait_ready(timeout=20)
            sent = await fake.slash_command(ALICE, "signoff", {}, subcommand="help")
            replies = await fake.wait_for(
                lambda: r if len(r := fake.interaction_responses(sent["id"])) >= 2 else None, timeout=10)
            assert "Commands:" in str(replies[1].json["content"])
        finally:
            stop.set()
            assert await asyncio.wait_for(service, 20) == 0
        assert fake.connected_sessions == 0  # closed with 1000: the session ended


async def test_a_refused_token_stops_start_up_with_a_fix(sqlite_database_url: str) -> None:
    async with FakeDiscord() as fake:
        settings = make_settings(sqlite_database_url, **{**discord_env(fake), "DISCORD_BOT_TOKEN": "not-the-token"})
        async with running_app(settings) as app:
            with pytest.raises(SignoffError, match="Discord refused DISCORD_BOT_TOKEN"):
                async with start_discord(app, settings, guild_ready_timeout=0.05):
                    pass
            assert "discord" not in app.dispatcher.gateways


async def test_missing_message_content_intent_stops_start_up_with_a_fix(sqlite_database_url: str) -> None:
    async with FakeDiscord(privileged_intents_allowed=False) as fake:
        settings = make_settings(sqlite_database_url, **discord_env(fake))
        async with running_app(settings) as app:
            with pytest.raises(SignoffError, match="Message Content Intent"):
                async with start_discord(app, settings, guild_ready_timeout=0.05):
                    pass
            assert "discord" not in app.dispatcher.gateways
