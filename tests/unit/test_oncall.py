"""On-call schedules (issue 20, item 1): who the event on now names, the feed's recurrences, the mentions a
level's `page` and `escalate_to` make, and the policy keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.ical import FeedError, parse_feed
from core.app.oncall import OnCall
from core.domain.calendar import CalendarEvent
from core.domain.oncall import on_call_now
from core.domain.policy_file import PolicyFileError, parse_policy
from testkit.ics import rotation
from testkit.support import MovableClock

MONDAY = datetime(2026, 11, 30, 9, tzinfo=UTC)
PEOPLE = {"alice": "alice@example.com", "bob": None, "bob smith": None, "carol": "Carol@Example.com"}


def shift(summary: str, *attendees: str, hours: int = 8) -> CalendarEvent:
    return CalendarEvent(summary=summary, start=MONDAY, end=MONDAY + timedelta(hours=hours), attendees=attendees)


def test_the_event_on_now_names_the_person_by_attendee_email_then_by_summary() -> None:
    at = MONDAY + timedelta(hours=1)
    assert on_call_now([shift("Primary", "carol@example.com")], at, PEOPLE) == "carol"  # case does not matter
    assert on_call_now([shift("On call: alice@example.com")], at, PEOPLE) == "alice"
    assert on_call_now([shift("Primary - Bob")], at, PEOPLE) == "bob"
    assert on_call_now([shift("Primary - Bob Smith")], at, PEOPLE) == "bob smith"  # the longest name
    assert on_call_now([shift("Primary - Bobby")], at, PEOPLE) is None  # whole words only
    assert on_call_now([shift("Primary", "dave@example.com")], at, PEOPLE) is None
    assert on_call_now([shift("Primary - Bob")], MONDAY + timedelta(hours=8), PEOPLE) is None  # the shift ended


def test_a_weekly_rotation_is_expanded_from_the_feed() -> None:
    feed = rotation((MONDAY, MONDAY + timedelta(days=3, hours=12), "Primary: alice", "alice@example.com"),
                    (MONDAY + timedelta(days=3, hours=12), MONDAY + timedelta(days=7), "Primary: bob", None),
                    weekly=True)
    clock = MovableClock(MONDAY + timedelta(days=14, hours=1))
    events = parse_feed(feed, clock.now())
    assert on_call_now(events, clock.now(), PEOPLE) == "alice"
    clock.advance(days=4)
    assert on_call_now(events, clock.now(), PEOPLE) == "bob"
    with pytest.raises(FeedError):
        parse_feed(b"<html>login</html>", clock.now())


class Copy:
    def __init__(self, events: list[CalendarEvent] | None) -> None:
        self.events = events

    def occurrences(self) -> list[CalendarEvent] | None:
        return self.events


POLICY = """
[people.alice]
slack = "U0ALICE"
email = "alice@example.com"
groups = ["sre"]

[people.bob]
slack = "U0BOB"
groups = ["sre"]

[groups.sre]
slack = "S0SRE"

[oncall.primary]
ical = "primary.ics"

[oncall.secondary]
ical = "https://oncall.example.com/secondary.ics"
refresh = "1m"

[risk.high]
quorum = 1
approvers = ["sre"]
page = ["oncall.primary"]
escalate_after = "10m"
escalate_to = ["oncall.secondary", "sre"]
"""


def test_pages_name_the_person_on_call_and_fall_back_to_the_groups_without_a_copy() -> None:
    policy = parse_policy(POLICY, "p.toml")
    assert policy.oncall["secondary"].refresh == timedelta(minutes=1)
    assert policy.oncall["primary"].refresh == timedelta(minutes=5)
    clock = MovableClock(MONDAY + timedelta(hours=1))
    feeds = {"primary": Copy([shift("Primary", "alice@example.com")]), "secondary": Copy(None)}
    on_call = OnCall(policy, feeds, clock.now)
    assert on_call.person("primary") == "alice" and on_call.person("secondary") is None
    paged = on_call.mentions(["oncall.primary"], "slack", fallback=["sre"])
    assert paged.users == ("U0ALICE",) and paged.groups == ()
    # No copy of the secondary's feed: the level's groups instead.
    escalated = on_call.mentions(["oncall.secondary"], "slack", fallback=["sre"])
    assert escalated.users == () and escalated.groups == ("S0SRE",)
    clock.advance(hours=8)  # alice's shift is over, nobody is named: the groups again
    assert on_call.mentions(["oncall.primary"], "slack", fallback=["sre"]).groups == ("S0SRE",)


def test_page_and_escalate_to_must_name_known_schedules() -> None:
    with pytest.raises(PolicyFileError, match="page names schedules"):
        parse_policy(POLICY.replace('page = ["oncall.primary"]', 'page = ["sre"]'), "p.toml")
    with pytest.raises(PolicyFileError, match=r"unknown schedule `oncall\.tertiary`"):
        parse_policy(POLICY.replace('"oncall.secondary", "sre"', '"oncall.tertiary"'), "p.toml")
    with pytest.raises(PolicyFileError, match="refresh"):
        parse_policy(POLICY.replace('refresh = "1m"', 'refresh = "soon"'), "p.toml")
    with pytest.raises(PolicyFileError, match=r"oncall\.primary\.ical"):
        parse_policy(POLICY.replace('ical = "primary.ics"', 'ical = ""'), "p.toml")


def test_the_remembered_answer_changes_exactly_when_an_override_starts_and_ends() -> None:
    policy = parse_policy(POLICY, "p.toml")
    clock = MovableClock(MONDAY + timedelta(hours=1))
    override = CalendarEvent(summary="Override: bob", start=MONDAY + timedelta(hours=4),
                             end=MONDAY + timedelta(hours=6))
    on_call = OnCall(policy, {"primary": Copy([shift("Primary", "alice@example.com"), override])}, clock.now)
    seen = []
    for hours in (0, 3, 2, 1, 1, 1, 1):  # 1h, 4h (the override starts), 6h (it ends), 7h, 8h, 9h, 10h
        clock.advance(hours=hours, seconds=-1 if hours == 3 else 0)
        seen.append(on_call.person("primary"))
        if hours == 3:
            clock.advance(seconds=1)
            seen.append(on_call.person("primary"))
    assert seen == ["alice", "alice", "bob", "alice", "alice", None, None, None]
