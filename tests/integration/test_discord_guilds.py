"""Discord refuses servers it is not configured for (issue: hardening II, defect 11), as Slack refuses other
workspaces, whether or not DISCORD_GUILD_ID is set.

Which server is configured: DISCORD_GUILD_ID; without it, the server of DISCORD_CHANNEL_ID (where API and alert
cards go); with neither, none, and every interaction is refused saying which setting to add. A DM belongs to no
server and is refused too. The real discord.py client against the fake gateway and REST API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from testkit.fakes.discord import FakeDiscord, InteractionReply
from testkit.support.discord import (
    ALICE,
    BOB,
    EVE,
    MALLORY,
    RESTART_API,
    command,
    custom_ids,
    discord_service,
    followup_text,
    requested,
)
from testkit.support.discord import CAROL as CAROL_ID

OTHER_GUILD = "999999999999999999"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        for uid, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL_ID, "carol"), (MALLORY, "mallory"), (EVE, "eve")):
            server.add_member(uid, name)
        yield server
    await asyncio.sleep(0)


@contextlib.contextmanager
def from_guild(fake: FakeDiscord, guild: str | None) -> Iterator[None]:
    """Interactions the fake dispatches meanwhile come from `guild` (another server the bot was added to), or
    from a DM (None: no server, the user instead of a member)."""
    dispatch = fake.dispatch

    async def elsewhere(event: str, data: dict[str, Any]) -> dict[str, Any]:
        if event == "INTERACTION_CREATE":
            data = dict(data)
            if guild is None:
                for key in ("guild_id", "guild", "guild_locale"):
                    data.pop(key, None)
                data["user"] = data.pop("member")["user"]
                data["context"] = 1
            else:
                data["guild_id"] = guild
                data["guild"] = {**data["guild"], "id": guild}
        return await dispatch(event, data)

    fake.dispatch = elsewhere  # type: ignore[method-assign]
    try:
        yield
    finally:
        del fake.dispatch


async def refused_text(fake: FakeDiscord, user: str, sub: str, **options: object) -> str:
    replies: list[InteractionReply] = await command(fake, user, sub, **options)
    return followup_text(replies)


@pytest.mark.parametrize("guild_setting", ["DISCORD_GUILD_ID", "DISCORD_CHANNEL_ID only"])
async def test_another_server_is_refused(fake: FakeDiscord, sqlite_database_url: str, guild_setting: str) -> None:
    env = {} if guild_setting == "DISCORD_GUILD_ID" else {"DISCORD_GUILD_ID": None}
    async with discord_service(fake, sqlite_database_url, **env) as app:
        with from_guild(fake, OTHER_GUILD):
            text = await refused_text(fake, ALICE, "request", action=RESTART_API)
        assert "refused" in text and fake.guild_id in text and OTHER_GUILD in text, text
        assert await app.service.pending() == []

        # Our own server still works, and a click from the other one does not sign.
        card, _ = await requested(fake, app, ALICE)
        request_id = "R-1"
        approve = next(c for c in custom_ids(card) if c.startswith("signoff:approve:"))
        with from_guild(fake, OTHER_GUILD):
            sent = await fake.click(BOB, card["id"], approve)
            await fake.wait_for(lambda: len(fake.interaction_responses(sent["id"])) >= 2)
            told = followup_text(fake.interaction_responses(sent["id"]))
        assert "refused" in told, told
        assert (await app.service.get(request_id)).signed == 0


async def test_a_direct_message_is_refused_without_a_guild_setting(fake: FakeDiscord,
                                                                   sqlite_database_url: str) -> None:
    async with discord_service(fake, sqlite_database_url, DISCORD_GUILD_ID=None) as app:
        with from_guild(fake, None):
            text = await refused_text(fake, ALICE, "request", action=RESTART_API)
        assert "refused" in text and fake.guild_id in text, text
        assert await app.service.pending() == []


async def test_with_no_server_configured_every_interaction_is_refused_saying_what_to_set(
        fake: FakeDiscord, sqlite_database_url: str) -> None:
    async with discord_service(fake, sqlite_database_url, DISCORD_GUILD_ID=None, DISCORD_CHANNEL_ID=None) as app:
        text = await refused_text(fake, ALICE, "request", action=RESTART_API)
        assert "DISCORD_GUILD_ID" in text and "refused" in text, text
        assert await app.service.pending() == []


async def test_the_channels_server_is_found_even_when_the_first_read_fails(fake: FakeDiscord,
                                                                          sqlite_database_url: str) -> None:
    fake.fail("GET", rf"/channels/{fake.channel_id}$", status=403)  # the REST read at start-up
    async with discord_service(fake, sqlite_database_url, DISCORD_GUILD_ID=None) as app:
        with from_guild(fake, OTHER_GUILD):
            text = await refused_text(fake, ALICE, "help")
        assert "refused" in text and fake.guild_id in text, text
        assert followup_text(await command(fake, ALICE, "list")).startswith("No pending requests")
        assert await app.service.pending() == []
