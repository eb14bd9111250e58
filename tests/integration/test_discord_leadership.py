"""`start_discord` under the Discord lease, in process against the fake Discord: a follower does not
connect (no IDENTIFY) and connects once the lease is free; a leader that cannot renew disconnects and
unregisters its outbox gateway, and connects again once it leads again. Short lease timings (real time)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from bot.bootstrap import App
from bot.chats.discord import DISCORD_LEASE, start_discord
from core.app.leader import Leadership
from testkit.fakes.discord import FakeDiscord
from testkit.support import make_settings, running_app

T = TypeVar("T")
TIMING = {"ttl": 1.0, "renew_every": 0.2, "poll_every": 0.1, "safety": 0.3}


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


class FlakyStore:
    def __init__(self, app: App) -> None:
        self.db = app.db
        self.failing = False

    async def write(self, work: Callable[[Any], T], *, urgent: bool = False, quick: bool = False) -> T:
        if self.failing:
            raise ConnectionRefusedError("database unreachable")
        return await self.db.write(work, urgent=urgent, quick=quick)

    async def read(self, work: Callable[[Any], T], *, quick: bool = False) -> T:
        return await self.db.read(work, quick=quick)


def settings_for(fake: FakeDiscord, database_url: str) -> Any:
    return make_settings(database_url, DISCORD_BOT_TOKEN=fake.token, DISCORD_API_URL=fake.api_url,
                         DISCORD_GATEWAY_URL=fake.gateway_url, DISCORD_CHANNEL_ID=fake.channel_id,
                         DISCORD_GUILD_ID=fake.guild_id)


async def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):  # generous: the lease timings are under a second
        while not check():
            await asyncio.sleep(0.02)


async def test_a_follower_does_not_connect_until_the_lease_is_free(fake: FakeDiscord, sqlite_database_url: str,
                                                                   ) -> None:
    settings = settings_for(fake, sqlite_database_url)
    async with running_app(settings) as app:
        # Another replica holds the session for a while.
        until = app.clock.now() + timedelta(seconds=1.5)
        await app.db.write(lambda uow: uow.leases.acquire(DISCORD_LEASE, owner="other", until=until,
                                                          now=app.clock.now()))
        seat = Leadership(app.db, app.clock, name=DISCORD_LEASE, owner="me", **TIMING)
        async with start_discord(app, settings, guild_ready_timeout=0.05, leadership=seat) as discord:
            assert discord.runtime is None and not seat.is_leader
            assert fake.identifies == [] and "discord" not in app.dispatcher.gateways
            # Its API and alert requests still queue a Discord card, for the leader to deliver.
            assert app.service.default_places["discord"] == fake.channel_id
            await eventually(lambda: discord.runtime is not None)  # the other lease lapsed: taken over
            assert len(fake.identifies) == 1 and "discord" in app.dispatcher.gateways
        assert fake.connected_sessions == 0
        assert await app.db.read(lambda uow: uow.leases.holder(DISCORD_LEASE, app.clock.now())) is None  # given up


async def test_a_leader_that_cannot_renew_disconnects_and_comes_back(fake: FakeDiscord, sqlite_database_url: str,
                                                                     ) -> None:
    settings = settings_for(fake, sqlite_database_url)
    async with running_app(settings) as app:
        store = FlakyStore(app)
        seat = Leadership(store, app.clock, name=DISCORD_LEASE, owner="me", **TIMING)
        async with start_discord(app, settings, guild_ready_timeout=0.05, leadership=seat) as discord:
            assert discord.runtime is not None and fake.connected_sessions == 1  # the lease was free: READY
            assert "discord" in app.dispatcher.gateways
            store.failing = True  # the database is gone for longer than the lease
            await eventually(lambda: fake.connected_sessions == 0 and discord.runtime is None)
            assert not seat.is_leader and "discord" not in app.dispatcher.gateways
            store.failing = False
            await eventually(lambda: discord.runtime is not None and fake.connected_sessions == 1)
            assert len(fake.identifies) == 2 and "discord" in app.dispatcher.gateways
