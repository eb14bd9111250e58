"""Break glass on Discord, on the wire (issue 20, item 2): the `/signoff breakglass` subcommand runs a pending
request on one signature; the thread's review message carries `signoff:countersign:R-1` /
`signoff:dispute:R-1` (DynamicItem buttons); only reviewers may press them; a countersignature closes the
review. FakeDiscord drives an unmodified discord.py client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.domain.approvals import RequestStatus
from testkit.fakes.discord import FakeDiscord
from testkit.support.discord import (
    ALICE,
    BOB,
    CAROL,
    MALLORY,
    answered,
    click,
    command,
    custom_ids,
    description,
    discord_service,
    followup_text,
    requested,
    wait_card,
)
from testkit.support.policy import team_policy

POLICY = team_policy(discord={"alice": ALICE, "bob": BOB, "carol": CAROL, "mallory": MALLORY}) + """
[breakglass]
who = ["sre"]
after = "1s"
reviewers = ["leads"]
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        for uid, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (MALLORY, "mallory")):
            server.add_member(uid, name)
        yield server


def review_of(fake: FakeDiscord, thread_id: str) -> dict[str, Any] | None:
    return next((m for m in fake.thread_messages(thread_id) if "signoff:countersign:R-1" in custom_ids(m)), None)


async def test_break_glass_on_discord(fake: FakeDiscord, sqlite_database_url: str) -> None:
    async with discord_service(fake, sqlite_database_url, policy=POLICY) as app:
        _, thread = await requested(fake, app, risk="high")
        text = followup_text(await command(fake, ALICE, "breakglass", id="R-1", reason="api down"))
        assert "becomes possible after 1s" in text, text
        await asyncio.sleep(1.1)
        text = followup_text(await command(fake, MALLORY, "breakglass", id="R-1", reason="me"))
        assert text.startswith("Only sre may break glass"), text
        text = followup_text(await command(fake, ALICE, "breakglass", id="R-1"))
        assert "needs a reason" in text, text

        text = followup_text(await command(fake, ALICE, "breakglass", id="R-1", reason="api down, nobody answers"))
        assert text.startswith("🚨 You broke the glass on R-1"), text
        final = await wait_card(fake, "R-1", lambda m: "SUCCEEDED" in description(m))
        assert "🚨 break glass by alice: api down, nobody answers" in str(final["embeds"])
        review = await fake.wait_for(lambda: review_of(fake, thread))
        assert custom_ids(review) == ["signoff:countersign:R-1", "signoff:dispute:R-1"]
        assert f"<@{BOB}>" in review["content"] and f"<@{CAROL}>" in review["content"]

        assert "Only members of leads review" in await click(fake, BOB, review["id"], "signoff:countersign:R-1")
        # Dispute opens a modal asking the reason; its submission records the dispute.
        sent = await fake.click(CAROL, review["id"], "signoff:dispute:R-1")
        await fake.wait_for(lambda: fake.interaction_responses(sent["id"]) or None)
        [opened] = fake.interaction_responses(sent["id"])
        assert (opened.kind, opened.type) == ("callback", 9), opened
        modal = fake.modal(sent["id"])
        assert modal["custom_id"] == "signoff:dispute:R-1" and "R-1" in modal["title"]
        submitted = await fake.submit_modal(sent["id"], {"reason": "could have waited for bob"})
        text = followup_text(await answered(fake, submitted))
        assert "carol disputed the break glass by alice on R-1: could have waited for bob" in text, text
        request = await app.service.get("R-1")
        assert request.breakglass is not None and request.breakglass.disputed_by == ("carol",)
        sent = await fake.click(BOB, review["id"], "signoff:dispute:R-1")  # not a reviewer: told, no modal
        await fake.wait_for(lambda: fake.interaction_responses(sent["id"]) or None)
        [refused] = fake.interaction_responses(sent["id"])
        assert (refused.type, refused.ephemeral) == (4, True)
        assert "Only members of leads review" in str(refused.json["data"]["content"])
        listed = followup_text(await command(fake, CAROL, "breakglass"))
        assert listed.startswith("1 open break glass review(s):") and "R-1" in listed
        text = await click(fake, CAROL, review["id"], "signoff:countersign:R-1")
        assert "the review is closed" in text, text
        request = await app.service.get("R-1")
        assert request.status is RequestStatus.succeeded
        assert request.breakglass is not None and request.breakglass.countersigned_by == ("carol",)
        text = followup_text(await command(fake, CAROL, "dispute", id="R-1", reason="late"))
        assert "already countersigned" in text, text
