"""Break glass with schedules (issue 20, item 2): `who = ["oncall.primary"]` lets the person on call now break
glass (and nobody else); `reviewers = ["oncall.secondary"]` lets the secondary's person countersign, resolved
from the schedules' cached copies (core/app/oncall.py), and the overdue reminder mentions them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest

from bot.chats.console import attach_console
from bot.cli import check_config
from bot.settings import Settings
from core.domain.approvals import RequestStatus
from core.domain.breakglass_review import ReviewStatus
from testkit.ics import rotation
from testkit.support import MovableClock, make_settings, running_app
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, CAROL, MALLORY

MONDAY = datetime(2026, 11, 30, 9, tzinfo=UTC)
SCHEDULES = """
[oncall.primary]
ical = "{primary}"

[oncall.secondary]
ical = "{secondary}"

[breakglass]
who = ["oncall.primary"]
after = "5m"
review_within = "1h"
reviewers = ["oncall.secondary"]
"""


async def test_schedules_name_who_may_break_glass_and_who_reviews(sqlite_database_url: str, tmp_path: Path) -> None:
    primary, secondary = tmp_path / "primary.ics", tmp_path / "secondary.ics"
    week = (MONDAY, MONDAY + timedelta(days=7))
    primary.write_bytes(rotation((*week, "Primary: mallory", None), weekly=True))  # a developer, on call
    secondary.write_bytes(rotation((*week, "Secondary: bob", None), weekly=True))
    policy = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL, "mallory": MALLORY}) + \
        SCHEDULES.format(primary=primary, secondary=secondary)
    clock = MovableClock(MONDAY + timedelta(hours=1))
    async with running_app(make_settings(sqlite_database_url), policy=policy, clock=clock) as app:
        assert app.calendars is not None
        await app.calendars.refresh_all()  # what each feed's background loop does
        out = StringIO()
        console = attach_console(app, out, person="alice")

        def said() -> str:
            text = out.getvalue()
            out.seek(0)
            out.truncate()
            return text

        assert await console.line("request rollout restart deployment/api -n prod")
        await app.settle()
        clock.advance(minutes=6)
        said()
        # alice is an sre but not on call: refused; mallory is on call for primary: allowed.
        assert await console.line('breakglass R-1 reason="api down"')
        assert "Only oncall.primary may break glass" in said()
        assert (await app.service.get("R-1")).status is RequestStatus.pending
        assert await console.line("as mallory")
        assert await console.line('breakglass R-1 reason="api down, nobody answers"')
        await app.settle()
        assert "You broke the glass on R-1" in said()
        assert (await app.service.get("R-1")).status is RequestStatus.succeeded

        # carol is a lead but not the secondary on call: refused; bob is: he countersigns.
        assert await console.line("as carol")
        assert await console.line("countersign R-1")
        assert "Only the person on call for oncall.secondary review break glass" in said()
        clock.advance(hours=2)
        assert (await app.maintenance.sweep())["reviews_overdue"] == 1
        await app.settle()
        assert "is overdue for review" in said()
        assert await console.line("as bob")
        assert await console.line("countersign R-1")
        await app.settle()
        assert "the review is closed" in said()
        record = (await app.service.get("R-1")).breakglass
        assert record is not None and record.status is ReviewStatus.countersigned
        assert record.countersigned_by == ("bob",)


def test_check_config_says_who_may_break_glass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(team_policy(slack={"alice": ALICE}) + SCHEDULES.format(primary="p.ics", secondary="s.ics"))
    assert check_config(Settings(SIGNOFF_POLICY=str(policy_file))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ("  break glass: oncall.primary after 5m pending; reviewed by oncall.secondary (1 countersignature(s)) "
            "within 1h") in lines, lines
    policy_file.write_text(team_policy(slack={"alice": ALICE}))
    assert check_config(Settings(SIGNOFF_POLICY=str(policy_file))) == 0
    assert "  break glass: off (no [breakglass] section)" in capsys.readouterr().out.splitlines()
