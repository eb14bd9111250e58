"""Calendar events as signoff reads them (on-call shifts, recurring freeze windows), and which one is on now.

The feeds themselves are read and expanded elsewhere (RFC 5545 by `icalendar` + `recurring-ical-events`, in
an adapter); here an event is plain data, and the questions asked of it are pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class CalendarEvent(BaseModel):
    """One occurrence of an event: a recurring one is expanded into one of these per occurrence."""

    model_config = ConfigDict(frozen=True)

    summary: str = ""
    start: datetime
    end: datetime
    attendees: tuple[str, ...] = ()  # email addresses, without `mailto:`

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


def happening(events: Iterable[CalendarEvent], at: datetime) -> list[CalendarEvent]:
    """The events on at `at`, the one that started last first (a shift handed over early wins)."""
    return sorted((e for e in events if e.covers(at)), key=lambda e: e.start, reverse=True)
