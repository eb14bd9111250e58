"""Change freezes (issue 20, item 3): which window is in force, and what it does to a request's risk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.app.freezes import under_freeze
from core.domain.calendar import CalendarEvent
from core.domain.freeze import Freeze, FreezeEffect, freeze_in_force
from core.domain.policy import Policy, Risk
from core.domain.policy_file import PolicyFileError, parse_policy
from core.errors import ChangeFreeze
from testkit.support import MovableClock

START = datetime(2026, 11, 27, tzinfo=UTC)
END = datetime(2026, 11, 30, 8, tzinfo=UTC)
BLACK_FRIDAY = Freeze(name="Black Friday", start=START, end=END)
CODE_RED = Freeze(name="Code red", start=START + timedelta(days=1), end=START + timedelta(days=2),
                  effect=FreezeEffect.refuse)


def test_a_window_is_in_force_from_its_start_until_just_before_its_end() -> None:
    clock = MovableClock(START - timedelta(seconds=1))
    assert freeze_in_force([BLACK_FRIDAY], clock.now()) is None
    clock.advance(seconds=1)
    on = freeze_in_force([BLACK_FRIDAY], clock.now())
    assert on is not None and on.name == "Black Friday" and on.end == END
    clock.advance(days=3, hours=8, seconds=-1)
    assert freeze_in_force([BLACK_FRIDAY], clock.now()) is not None
    clock.advance(seconds=1)
    assert freeze_in_force([BLACK_FRIDAY], clock.now()) is None


def test_overlapping_freezes_the_strictest_applies() -> None:
    clock = MovableClock(START + timedelta(hours=12))
    on = freeze_in_force([BLACK_FRIDAY, CODE_RED], clock.now())
    assert on is not None and on.name == "Black Friday"  # code red has not started
    clock.advance(days=1)
    on = freeze_in_force([BLACK_FRIDAY, CODE_RED], clock.now())
    assert on is not None and on.name == "Code red" and on.effect is FreezeEffect.refuse
    # Two of the same effect: the one that ends last says when it is really over.
    longer = Freeze(name="Longer", start=START, end=END + timedelta(days=1))
    on = freeze_in_force([BLACK_FRIDAY, longer], clock.now())
    assert on is not None and on.name == "Longer"


def test_a_recurring_freeze_is_in_force_during_one_of_its_occurrences() -> None:
    weekly = Freeze(name="Friday afternoons", ical="freezes.ics")
    friday = datetime(2026, 12, 4, 14, tzinfo=UTC)
    windows = {"Friday afternoons": [
        CalendarEvent(summary="freeze", start=friday - timedelta(days=7), end=friday - timedelta(days=7, hours=-4)),
        CalendarEvent(summary="freeze", start=friday, end=friday + timedelta(hours=4)),
    ]}
    on = freeze_in_force([weekly], friday + timedelta(hours=1), windows)
    assert on is not None and on.start == friday and on.end == friday + timedelta(hours=4)
    assert freeze_in_force([weekly], friday + timedelta(hours=5), windows) is None
    assert freeze_in_force([weekly], friday + timedelta(hours=1)) is None  # its feed not read yet


def test_raise_is_one_level_higher_and_refuses_a_critical_request() -> None:
    policy = Policy(freeze=(BLACK_FRIDAY,))
    at = START + timedelta(hours=1)
    for risk, raised in ((Risk.low, Risk.medium), (Risk.medium, Risk.high), (Risk.high, Risk.critical)):
        got, freeze = under_freeze(policy, risk, "cordon node-1", at)
        assert got is raised and freeze is not None and freeze.name == "Black Friday"
    with pytest.raises(ChangeFreeze) as refused:
        under_freeze(policy, Risk.critical, "cordon node-1", at)
    assert "Black Friday" in refused.value.message and "break glass" in refused.value.message
    assert refused.value.code == "change_freeze"
    assert under_freeze(policy, Risk.low, "cordon node-1", END) == (Risk.low, None)


def test_refuse_names_the_freeze_its_end_and_break_glass() -> None:
    policy = Policy(freeze=(CODE_RED,))
    with pytest.raises(ChangeFreeze) as refused:
        under_freeze(policy, Risk.low, "rollout restart deployment/api -n prod", CODE_RED.start or START)
    message = refused.value.message
    assert "Code red" in message and "2026-11-29 00:00 UTC" in message and "break glass remains" in message


def test_the_policy_file_reads_freezes_and_refuses_mistakes() -> None:
    policy = parse_policy('[[freeze]]\nname = "Black Friday"\nstart = "2026-11-27T00:00:00Z"\n'
                          'end = "2026-11-30T08:00:00Z"\neffect = "raise"\n\n'
                          '[[freeze]]\nname = "Fridays"\nical = "freezes.ics"\neffect = "refuse"\n', "p.toml")
    assert [f.name for f in policy.freeze] == ["Black Friday", "Fridays"]
    assert policy.freeze[0].end == END and policy.freeze[1].effect is FreezeEffect.refuse
    for body, says in (
        ('name = "x"\nstart = "2026-11-27T00:00:00Z"\n', "needs `start` and `end`"),
        ('name = "x"\nstart = "2026-11-27T00:00:00Z"\nend = "2026-11-26T00:00:00Z"\n', "after `start`"),
        ('name = "x"\nstart = "2026-11-27T00:00:00"\nend = "2026-11-28T00:00:00Z"\n', "timezone"),
        ('name = "x"\nical = "f.ics"\neffect = "pause"\n', "effect"),
        ('name = "x"\nical = "f.ics"\nstart = "2026-11-27T00:00:00Z"\n', "not both"),
    ):
        with pytest.raises(PolicyFileError) as error:
            parse_policy("[[freeze]]\n" + body, "p.toml")
        assert says in str(error.value), (body, str(error.value))
    with pytest.raises(PolicyFileError, match="two freezes are named"):
        parse_policy('[[freeze]]\nname = "x"\nical = "a.ics"\n[[freeze]]\nname = "x"\nical = "b.ics"\n', "p.toml")
