"""iCalendar feeds for tests: an on-call rotation as PagerDuty, Opsgenie or Grafana OnCall export it."""

from __future__ import annotations

from datetime import datetime


def _at(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def rotation(*shifts: tuple[datetime, datetime, str, str | None], weekly: bool = False) -> bytes:
    """One VEVENT per shift (start, end, summary, attendee email or None); `weekly` repeats each one."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//signoff tests//EN"]
    for number, (start, end, summary, email) in enumerate(shifts):
        lines += ["BEGIN:VEVENT", f"UID:shift-{number}@tests", f"DTSTAMP:{_at(start)}", f"DTSTART:{_at(start)}",
                  f"DTEND:{_at(end)}", f"SUMMARY:{summary}"]
        if email:
            lines.append(f"ATTENDEE;CN=on call:mailto:{email}")
        if weekly:
            lines.append("RRULE:FREQ=WEEKLY")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()
