"""Discord's `/signoff` options become typed values through discord.py's `app_commands.Transformer`s (issue: house
II, item 5): request and incident ids, risk levels and scores. A bad value is answered privately with what would
work, and nothing runs; the options registered with Discord stay what they were. The real discord.py client
against the fake gateway and REST API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from testkit.fakes.discord import FakeDiscord
from testkit.support.discord import (
    ALICE,
    BOB,
    CAROL,
    EVE,
    MALLORY,
    RESTART_API,
    command,
    discord_service,
    followup_text,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        for uid, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (MALLORY, "mallory"), (EVE, "eve")):
            server.add_member(uid, name)
        yield server
    await asyncio.sleep(0)


BAD_VALUES = [
    ("status", {"id": "xyz"}, "`xyz` is not a request id; request ids look like R-42."),
    ("cancel", {"id": "INC-4"}, "`INC-4` is not a request id; request ids look like R-42."),
    ("timeline", {"id": "nope"}, "`nope` is not a request id; request ids look like R-42."),
    ("resolve", {"incident": "7x", "score": 4}, "`7x` is not an incident id; incident ids look like INC-7."),
    ("request", {"action": RESTART_API, "incident": "db-1"},
     "`db-1` is not an incident id; incident ids look like INC-7."),
    ("request", {"action": RESTART_API, "risk": "extreme"},
     "`extreme` is not a risk level; use low, medium, high or critical."),
]


@pytest.mark.parametrize(("sub", "options", "told"), BAD_VALUES, ids=[f"{s}-{i}" for i, (s, _, _) in
                                                                      enumerate(BAD_VALUES)])
async def test_a_bad_option_value_is_answered_with_what_works(fake: FakeDiscord, sqlite_database_url: str, sub: str,
                                                              options: dict[str, object], told: str) -> None:
    async with discord_service(fake, sqlite_database_url) as app:
        text = followup_text(await command(fake, ALICE, sub, **options))
        assert text == told
        assert await app.service.pending() == []


async def test_good_values_arrive_typed(fake: FakeDiscord, sqlite_database_url: str) -> None:
    async with discord_service(fake, sqlite_database_url) as app:
        made = followup_text(await command(fake, ALICE, "request", action=RESTART_API, risk="HIGH",
                                           incident="inc-9"))
        assert made.startswith("📝 R-1 posted"), made
        request = await app.service.get("R-1")
        assert (request.stated_risk, request.incident_id) == ("high", "INC-9")
        assert followup_text(await command(fake, BOB, "status", id=" r-1 ")).startswith("⏳ R-1 is pending")
        assert followup_text(await command(fake, BOB, "timeline", id="1")).startswith("Timeline of R-1")
