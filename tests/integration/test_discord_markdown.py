"""Discord renders markdown in embeds and message content: text typed by a person, sent by an alert or
written by the LLM must arrive as the characters they typed, never as a masked link, a heading, a
mention or a spoiler. Checked on the wire, through FakeDiscord and an unmodified discord.py client.

Why: a reason of `[Click here to approve](https://evil.example/x)` became a masked link in the card
(issue 10, item 7); Slack already escapes every such text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from core.domain.alerts import Alert, AlertStatus
from testkit.fakes.discord import FakeDiscord
from testkit.support.discord import ALICE, BOB, CAROL, MALLORY, discord_service, requested

EVIL = "[Click here to approve](https://evil.example/x) **now** ||secret|| <@222> __u__ ~~s~~ `code"
# Constructs Discord would render, unless escaped with a backslash.
_ACTIVE = (
    re.compile(r"(?<!\\)\[[^\]]*\]\([^)]*\)"),   # masked link
    re.compile(r"(?<!\\)\*\*"), re.compile(r"(?<!\\)__"), re.compile(r"(?<!\\)~~"), re.compile(r"(?<!\\)\|\|"),
    re.compile(r"(?<!\\)<[@#]"),                 # mentions
    re.compile(r"^\s*(?:#{1,3}|>|-)\s", re.MULTILINE),  # heading, quote, list
)


def active_markdown(text: str) -> list[str]:
    return [pattern.pattern for pattern in _ACTIVE if pattern.search(text)]


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        for uid, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (MALLORY, "mallory")):
            server.add_member(uid, name)
        yield server


async def test_a_reason_with_markdown_shows_as_typed_on_the_card(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        card, _ = await requested(fake, app, risk="high", reason=EVIL)
        reason = {f["name"]: f["value"] for f in card["embeds"][0]["fields"]}["Reason"]
        assert active_markdown(reason) == [], reason
        assert reason.startswith(r"\[Click here to approve](https://evil.example/x) \*\*now\*\*"), reason
        assert r"\|\|secret\|\|" in reason and r"\<@222>" in reason and r"\`code" in reason
        # What signoff itself formats still renders: the operation stays a code span.
        fields = {f["name"]: f["value"] for f in card["embeds"][0]["fields"]}
        assert fields["Operation"] == "`kubectl rollout restart deployment/api -n prod`"


async def test_alert_text_in_a_message_shows_as_sent(fake: FakeDiscord, database_url: str) -> None:
    async with discord_service(fake, database_url) as app:
        alert = Alert(status=AlertStatus.firing, labels={"alertname": "DiskAlmostFull", "node": "node-1"},
                      annotations={"description": "# URGENT\n> " + EVIL}, key="disk-1")
        await app.alerts.ingest_alerts([alert])
        texts = await fake.wait_for(
            lambda: [m["content"] for m in fake.messages() if "DiskAlmostFull" in m.get("content", "")] or None)
        for text in texts:
            assert active_markdown(text) == [], text
            assert r"\[Click here to approve]" in text
