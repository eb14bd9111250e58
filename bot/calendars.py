"""The policy's iCalendar feeds (`[oncall.*]` schedules and `ical` freezes), built and wired in one place."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from adapters.ical import CalendarFeed, shown_source
from core.app.metrics import Metrics
from core.app.oncall import OnCall
from core.domain.calendar import CalendarEvent, happening
from core.domain.freeze import freeze_in_force
from core.domain.policy import BUILT_IN, Policy
from core.ports import Clock

FREEZE_REFRESH = timedelta(minutes=5)


@dataclass
class Calendars:
    on_call: OnCall
    schedules: dict[str, CalendarFeed] = field(default_factory=dict)
    freezes: dict[str, CalendarFeed] = field(default_factory=dict)

    @property
    def feeds(self) -> list[CalendarFeed]:
        return [*self.schedules.values(), *self.freezes.values()]

    def freeze_windows(self) -> dict[str, list[CalendarEvent]]:
        """Each `ical` freeze's occurrences from its last good copy (none read yet: not in force)."""
        return {name: events for name, feed in self.freezes.items()
                if (events := feed.occurrences()) is not None}

    async def refresh_all(self) -> None:
        for feed in self.feeds:
            await feed.refresh_once()


def build_calendars(policy: Policy, clock: Clock, metrics: Metrics, timeout_s: float = 10.0) -> Calendars:
    base = Path(policy.source).parent if policy.source != BUILT_IN else None

    def counted(feed: str, outcome: str) -> None:
        metrics.inc("signoff_calendar_refreshes_total", feed=feed, outcome=outcome)

    def feed(name: str, source: str, refresh: timedelta) -> CalendarFeed:
        return CalendarFeed(name, source, refresh, now=clock.now, base=base, timeout_s=timeout_s,
                            on_refresh=counted)

    schedules = {name: feed(f"oncall.{name}", s.ical, s.refresh) for name, s in policy.oncall.items()}
    freezes = {f.name: feed(f"freeze {f.name}", f.ical, FREEZE_REFRESH) for f in policy.freeze if f.ical}
    return Calendars(on_call=OnCall(policy, schedules, clock.now), schedules=schedules, freezes=freezes)


def calendar_lines(policy: Policy, clock: Clock) -> list[str]:
    """For `signoff check-config`: who is on call now on each schedule, and each freeze (read once, now)."""
    if not policy.oncall and not policy.freeze:
        return []
    calendars = build_calendars(policy, clock, Metrics())
    asyncio.run(calendars.refresh_all())
    now = clock.now()
    lines = []
    for name, feed in sorted(calendars.schedules.items()):
        where = shown_source(feed.source)
        if feed.occurrences() is None:
            lines.append(f"  on call oncall.{name}: unknown, {where} could not be read ({feed.error}); "
                         "pages fall back to the level's groups")
            continue
        person = calendars.on_call.person(name, now)
        on_now = happening(feed.occurrences() or [], now)
        if person is not None:
            lines.append(f"  on call oncall.{name}: {person} (from {where})")
        elif on_now:
            lines.append(f"  on call oncall.{name}: nobody in the policy matches “{on_now[0].summary}” (from "
                         f"{where}); give the person an `email` or a name the event uses")
        else:
            lines.append(f"  on call oncall.{name}: no event now (from {where})")
    windows = calendars.freeze_windows()
    in_force = freeze_in_force(policy.freeze, now, windows)
    for freeze in policy.freeze:
        when = (f"{freeze.start:%Y-%m-%d %H:%M} to {freeze.end:%Y-%m-%d %H:%M}"
                if freeze.start and freeze.end else f"recurring, from {shown_source(freeze.ical or '')}")
        state = " (in force now)" if in_force is not None and in_force.name == freeze.name else ""
        if freeze.ical and freeze.name not in windows:
            state = f" (could not be read: {calendars.freezes[freeze.name].error})"
        lines.append(f"  freeze {freeze.name}: {freeze.effect}, {when}{state}")
    return lines
