"""On-call schedules: `[oncall.<name>]` reads an iCalendar feed; the event on now names the person on call."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, field_validator

from core.domain.calendar import CalendarEvent, happening

ONCALL_PREFIX = "oncall."


class Schedule(BaseModel):
    """An `[oncall.<name>]` table (the policy file reads `refresh` as a duration, like `5m`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ical: str
    refresh: timedelta = timedelta(minutes=5)

    @field_validator("ical")
    @classmethod
    def _given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("`ical` names a file or an http(s) URL of an iCalendar feed")
        return value.strip()


def schedule_name(reference: str) -> str | None:
    """`oncall.primary` → `primary`; a group's name → None."""
    return reference.removeprefix(ONCALL_PREFIX) if reference.startswith(ONCALL_PREFIX) else None


def on_call_now(events: Iterable[CalendarEvent], at: datetime, people: Mapping[str, str | None]) -> str | None:
    """The name (in the policy) of the person the event on at `at` names: an attendee's email matched to a
    person's `email`, else the summary matched to a person's email or name (the longest name found as whole
    words wins: "Primary: Alice Smith" names `alice smith` over `alice`). None when nobody matches."""
    by_email = {email.casefold(): name for name, email in people.items() if email}
    for event in happening(events, at):
        for attendee in event.attendees:
            found = by_email.get(attendee.casefold().removeprefix("mailto:"))
            if found is not None:
                return found
        summary = event.summary.casefold()
        for email, name in by_email.items():
            if email in summary:
                return name
        named = [name for name in people
                 if re.search(r"(?<!\w)" + re.escape(name.casefold()) + r"(?!\w)", summary)]
        if named:
            return max(named, key=len)
    return None
