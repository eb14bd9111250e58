"""Flood control's digest for `core.app.delivery`: the cards a channel's budget held back, listed in one message
per channel per minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.chat.digest import digest_text, incident_line, request_line
from core.chat.messages import MessageKind, NewMessage
from core.domain.ids import IncidentId, RequestId, stored_key
from core.ports import UnitOfWork

# One digest per channel per minute.
DIGEST_EVERY = timedelta(minutes=1)


def write_digest(uow: UnitOfWork, *, platform: str, channel: str, now: datetime, limit: int) -> int:
    """Queue the channel's digest if one is due; returns how many cards it lists (0: none due)."""
    keys = uow.channel_cards.take_digest(platform, channel, now=now, every=DIGEST_EVERY)
    if not keys:
        return 0
    lines: list[str] = []
    for key in keys:
        typed = stored_key(key)
        if isinstance(typed, RequestId):
            request = uow.requests.get(typed)
            lines.append(request_line(request) if request is not None else f"• {key}")
        elif isinstance(typed, IncidentId):
            incident = uow.incidents.get(typed)
            lines.append(incident_line(incident) if incident is not None else f"• {key}")
        else:
            lines.append(f"• {key}")
    uow.outbox.add([NewMessage(platform=platform, channel=channel, kind=MessageKind.channel,
                               text=digest_text(lines, limit=limit))])
    uow.channel_cards.prune(now - timedelta(hours=1))
    return len(keys)
