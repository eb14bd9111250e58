"""iCalendar feeds (on-call schedules, recurring freeze windows): read from a file or an http(s) URL,
parsed by `icalendar`, recurrences expanded by `recurring-ical-events`, and kept as plain `CalendarEvent`s.

A feed is refreshed in the background by its own supervised loop, never on the request path. A refresh that
fails keeps the last good copy (and says so in the log and in `/metrics`); a feed never read has no copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import recurring_ical_events
import structlog

from core.domain.calendar import CalendarEvent

log = structlog.get_logger(__name__)

# Occurrences are expanded this far around each refresh: a feed that cannot be read for a week still answers.
LOOK_BACK = timedelta(days=1)
LOOK_AHEAD = timedelta(days=8)
MAX_FEED_BYTES = 5 * 1024 * 1024


class FeedError(Exception):
    pass


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # floating time: read as UTC
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)  # an all-day event
    raise FeedError(f"not a date or a time: {value!r}")


def _attendees(component: Any) -> tuple[str, ...]:
    found = component.get("ATTENDEE")
    if found is None:
        return ()
    listed = found if isinstance(found, list) else [found]
    return tuple(str(a).removeprefix("mailto:").removeprefix("MAILTO:").strip() for a in listed)


def parse_feed(body: bytes, around: datetime) -> list[CalendarEvent]:
    """Every occurrence from LOOK_BACK before `around` to LOOK_AHEAD after it, as plain events."""
    try:
        calendar = icalendar.Calendar.from_ical(body)
        occurrences = recurring_ical_events.of(calendar).between(around - LOOK_BACK, around + LOOK_AHEAD)
    except Exception as exc:  # the parsers raise ValueError, KeyError and their own kinds
        raise FeedError(f"not an iCalendar feed ({type(exc).__name__}: {str(exc)[:200]})") from exc
    events = []
    for occurrence in occurrences:
        if occurrence.name != "VEVENT":
            continue
        start = _moment(occurrence.start)
        try:
            end = _moment(occurrence.end)  # DTEND, or DTSTART + DURATION, or a day for an all-day event
        except Exception:  # an event with neither an end nor a duration lasts no time at all
            end = start
        events.append(CalendarEvent(summary=str(occurrence.get("SUMMARY") or ""), start=start, end=end,
                                    attendees=_attendees(occurrence)))
    return sorted(events, key=lambda e: e.start)


class CalendarFeed:
    """One feed and its last good copy."""

    def __init__(self, name: str, source: str, refresh: timedelta, *, now: Callable[[], datetime],
                 base: Path | None = None, timeout_s: float = 10.0,
                 on_refresh: Callable[[str, str], None] | None = None) -> None:
        self.name = name
        self.source = source
        self.refresh = refresh
        self._now = now
        self._base = base
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._on_refresh = on_refresh
        self._body: bytes | None = None
        self._events: list[CalendarEvent] | None = None
        self.read_at: datetime | None = None  # the last good read
        self.error: str | None = None  # why the last refresh failed, None when it worked

    def occurrences(self) -> list[CalendarEvent] | None:
        """The expanded occurrences of the last good copy; None when there has never been one."""
        return self._events

    async def _read(self) -> bytes:
        if self.source.startswith(("http://", "https://")):
            async with aiohttp.ClientSession(timeout=self._timeout) as session, \
                    session.get(self.source) as response:
                if response.status != 200:
                    raise FeedError(f"HTTP {response.status}")
                body = await response.content.read(MAX_FEED_BYTES + 1)
        else:
            body = await asyncio.to_thread(self._read_file)
        if len(body) > MAX_FEED_BYTES:
            raise FeedError(f"larger than {MAX_FEED_BYTES} bytes")
        return body

    def _read_file(self) -> bytes:
        path = Path(self.source).expanduser()
        if not path.is_absolute() and self._base is not None:
            path = self._base / path  # beside the policy file
        return path.read_bytes()

    async def refresh_once(self) -> bool:
        """Read and parse the feed; on failure keep the last good copy. Either way the copy is expanded
        around now again, so a copy kept through failed refreshes still moves with the clock."""
        now = self._now()
        try:
            body = await self._read()
            events = await asyncio.to_thread(parse_feed, body, now)
        except (TimeoutError, OSError, aiohttp.ClientError, FeedError) as exc:
            self.error = str(exc) or type(exc).__name__
            kept = self._body is not None
            log.warning("calendar.refresh_failed", feed=self.name, source=shown_source(self.source), error=self.error,
                        kept_copy_from=self.read_at.isoformat() if self.read_at else None)
            if kept and self._body is not None:
                self._events = await asyncio.to_thread(parse_feed, self._body, now)
            self._report("kept_copy" if kept else "no_copy")
            return False
        self._body, self._events, self.read_at, self.error = body, events, now, None
        log.info("calendar.refreshed", feed=self.name, events=len(events))
        self._report("ok")
        return True

    def _report(self, outcome: str) -> None:
        """`ok`, `kept_copy` (failed, the last good copy still answers) or `no_copy` (failed, never read)."""
        if self._on_refresh is not None:
            self._on_refresh(self.name, outcome)

    async def run(self) -> None:
        """Refresh every `refresh`, forever (a supervised loop: one failed pass never ends it)."""
        while True:
            try:
                await self.refresh_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("calendar.refresh_crashed", feed=self.name)
            await asyncio.sleep(self.refresh.total_seconds())


def shown_source(source: str) -> str:
    """A feed URL without its query (feeds often carry a secret token there)."""
    return source.split("?", 1)[0]
