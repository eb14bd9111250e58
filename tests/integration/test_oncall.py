"""On-call schedules on the wire (issue 20, item 1): a feed served over loopback HTTP and one read from a file;
a refresh that fails keeps the last good copy (said in /metrics); the card's first post in Slack mentions the
person on call of the level's `page`, an escalation to `oncall.secondary` mentions theirs, and
`signoff check-config` says who is on call now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.ical import CalendarFeed
from bot.chats.discord import start_discord
from bot.cli import check_config
from bot.settings import Settings
from core.app.metrics import Metrics
from testkit.fakes.discord import FakeDiscord
from testkit.ics import rotation
from testkit.support import MovableClock, running_app
from testkit.support.discord import ALICE as D_ALICE
from testkit.support.discord import BOB as D_BOB
from testkit.support.discord import CAROL as D_CAROL
from testkit.support.discord import command, settings_for, wait_card
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, CAROL, slack_world

MONDAY = datetime(2026, 11, 30, 9, tzinfo=UTC)
WEEK = (
    (MONDAY, MONDAY + timedelta(days=3), "Primary: carol", None),
    (MONDAY + timedelta(days=3), MONDAY + timedelta(days=7), "Primary", "bob@example.com"),
)


class FeedServer:
    """Serves an .ics at /primary.ics, or fails with `status` when told to."""

    def __init__(self) -> None:
        self.body = rotation(*WEEK, weekly=True)
        self.status = 200
        self.reads = 0

    async def handle(self, _: web.Request) -> web.Response:
        self.reads += 1
        if self.status != 200:
            return web.Response(status=self.status, text="down")
        return web.Response(body=self.body, content_type="text/calendar")


@pytest.fixture
async def served() -> AsyncIterator[tuple[FeedServer, str]]:
    feed = FeedServer()
    app = web.Application()
    app.router.add_get("/primary.ics", feed.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield feed, str(server.make_url("/primary.ics"))
    finally:
        await server.close()


async def test_a_failed_refresh_keeps_the_last_good_copy(served: tuple[FeedServer, str]) -> None:
    server, url = served
    clock = MovableClock(MONDAY + timedelta(hours=1))
    metrics = Metrics()
    outcomes: list[str] = []

    def counted(feed: str, outcome: str) -> None:
        outcomes.append(outcome)
        metrics.inc("signoff_calendar_refreshes_total", feed=feed, outcome=outcome)

    feed = CalendarFeed("oncall.primary", url, timedelta(minutes=5), now=clock.now, on_refresh=counted)
    server.status = 503
    assert not await feed.refresh_once() and feed.occurrences() is None  # never read: no copy
    server.status = 200
    assert await feed.refresh_once()
    first = feed.occurrences()
    assert first is not None and any(e.summary == "Primary: carol" for e in first)
    server.status = 500
    clock.advance(days=10)
    assert not await feed.refresh_once()
    kept = feed.occurrences()
    assert kept is not None and feed.error == "HTTP 500" and feed.read_at == MONDAY + timedelta(hours=1)
    # The kept copy is expanded around the new now: next week's shifts are there.
    assert any(e.start == MONDAY + timedelta(days=10) for e in kept)
    assert outcomes == ["no_copy", "ok", "kept_copy"] and server.reads == 3
    counters = metrics.snapshot().counters["signoff_calendar_refreshes_total"]
    assert counters[(("feed", "oncall.primary"), ("outcome", "kept_copy"))] == 1


SCHEDULES = """
[oncall.primary]
ical = "{primary}"

[oncall.secondary]
ical = "{secondary}"

[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 2
approvers = ["sre"]
page = ["oncall.primary"]
escalate_after = "10m"
escalate_to = ["oncall.secondary"]

[groups.sre]
slack = "S0SRE"

[playbooks]
quorum = 1
approvers = ["sre"]
"""


def policy_with(primary: str, secondary: str) -> str:
    people = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL}, rules="")
    people = people.replace('[people.bob]\n', '[people.bob]\nemail = "bob@example.com"\n')
    return people + SCHEDULES.format(primary=primary, secondary=secondary)


async def test_slack_pages_the_person_on_call(sqlite_database_url: str, served: tuple[FeedServer, str],
                                              tmp_path: Path) -> None:
    server, url = served
    secondary = tmp_path / "secondary.ics"
    secondary.write_bytes(rotation((MONDAY, MONDAY + timedelta(days=7), "Secondary", "bob@example.com"),
                                   weekly=True))
    clock = MovableClock(MONDAY + timedelta(hours=1))
    async with slack_world(sqlite_database_url, policy=policy_with(url, str(secondary)), clock=clock) as world:
        calendars = world.app.calendars
        assert calendars is not None
        await calendars.refresh_all()  # what each feed's background loop does every `refresh`
        assert calendars.on_call.person("primary") == "carol" and calendars.on_call.person("secondary") == "bob"
        assert await world.command(ALICE, "request rollout restart deployment/api -n prod risk=high") == 200
        await world.settle()
        first = world.card("R-1")["text"]
        assert f"<@{CAROL}>" in first and "<!subteam^S0SRE>" in first, first
        clock.advance(minutes=10)
        assert (await world.app.maintenance.sweep())["escalated"] == 1
        await world.settle()
        (escalation,) = [t for t in world.thread_texts("R-1") if "escalating" in t]
        assert escalation.startswith(f"<@{BOB}> ⏫"), escalation

        # The primary's feed fails and the secondary's file is gone: the copies still answer.
        server.status = 500
        secondary.unlink()
        await calendars.refresh_all()
        assert calendars.on_call.person("primary") == "carol" and calendars.on_call.person("secondary") == "bob"
        counters = world.app.metrics.snapshot().counters["signoff_calendar_refreshes_total"]
        assert counters[(("feed", "oncall.primary"), ("outcome", "kept_copy"))] == 1
        assert counters[(("feed", "oncall.secondary"), ("outcome", "kept_copy"))] == 1


async def test_without_any_copy_the_first_post_pages_the_groups(sqlite_database_url: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.ics")
    async with slack_world(sqlite_database_url, policy=policy_with(missing, missing)) as world:
        assert world.app.calendars is not None
        await world.app.calendars.refresh_all()
        assert await world.command(ALICE, "request rollout restart deployment/api -n prod risk=high") == 200
        await world.settle()
        first = world.card("R-1")["text"]
        assert "<!subteam^S0SRE>" in first and f"<@{CAROL}>" not in first, first


def test_check_config_says_who_is_on_call_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    primary = tmp_path / "primary.ics"
    now = datetime.now(UTC).replace(microsecond=0)
    primary.write_bytes(rotation((now - timedelta(hours=1), now + timedelta(hours=1), "Primary: carol", None)))
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(policy_with("primary.ics", str(tmp_path / "gone.ics")))  # beside the policy file
    settings = Settings(SIGNOFF_POLICY=str(policy_file))
    assert check_config(settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  on call oncall.primary: carol (from primary.ics)" in lines, lines
    assert any("high: quorum 2" in line and "pages oncall.primary" in line for line in lines)
    (secondary,) = [line for line in lines if line.startswith("  on call oncall.secondary")]
    assert "could not be read" in secondary and "fall back to the level's groups" in secondary


SRE_ROLE = "888888888888888888"


async def test_discord_pages_the_person_on_call_from_the_background_loop(
        sqlite_database_url: str, tmp_path: Path) -> None:
    """On Discord the first post names the person on call as `<@…>` and allows exactly that ping; the feed is
    read by the background loop `app.background()` runs, not by the request."""
    primary = tmp_path / "primary.ics"
    now = datetime.now(UTC).replace(microsecond=0)
    primary.write_bytes(rotation((now - timedelta(hours=1), now + timedelta(hours=1), "Primary: carol", None)))
    people = team_policy(discord={"alice": D_ALICE, "bob": D_BOB, "carol": D_CAROL}, rules="")
    policy = people + SCHEDULES.format(primary=primary, secondary=primary).replace(
        '[groups.sre]\nslack = "S0SRE"', f'[groups.sre]\ndiscord = "{SRE_ROLE}"')
    async with FakeDiscord() as fake:
        settings = settings_for(fake, sqlite_database_url, SIGNOFF_SWEEP_INTERVAL="3600")
        async with running_app(settings, policy=policy) as app, \
                start_discord(app, settings, guild_ready_timeout=0.05), app.background():
            for user, name in ((D_ALICE, "alice"), (D_BOB, "bob"), (D_CAROL, "carol")):
                fake.add_member(user, name)
            assert app.calendars is not None
            on_call = app.calendars.on_call
            assert await fake.wait_for(lambda: on_call.person("primary") == "carol" or None)
            await command(fake, D_ALICE, "request", action="rollout restart deployment/api -n prod", risk="high")
            await wait_card(fake, "R-1")
            (first,) = [c.json for c in fake.calls_to("POST", r"/channels/\d+/messages$")
                        if not c.failed and c.json.get("embeds")]
            assert first["content"] == f"Can sign: <@&{SRE_ROLE}> <@{D_CAROL}>", first["content"]
            allowed = first["allowed_mentions"]
            assert [str(u) for u in allowed.get("users", [])] == [D_CAROL]
            assert [str(r) for r in allowed.get("roles", [])] == [SRE_ROLE]
