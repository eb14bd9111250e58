"""The digest message: the requests and incidents a busy channel got no card for, and how to act on them."""

from __future__ import annotations

from collections.abc import Sequence

from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.incidents import Incident

MAX_LINES = 40


def request_line(request: ApprovalRequest) -> str:
    line = (f"• {request.id} · `{request.operation.command()}` · {request.risk} risk, "
            f"{request.signed}/{request.quorum} signed · {request.status.value}")
    if request.incident_id:
        line += f" · {request.incident_id}"
    if request.status is RequestStatus.pending:
        line += f" — `status {request.id}`, `approve {request.id}`, `reject {request.id}`"
    else:
        line += f" — `status {request.id}`, `timeline {request.id}`"
    return line


def incident_line(incident: Incident) -> str:
    scope = f" ({incident.scope})" if incident.alert_count else ""
    return (f"• {incident.id} · {incident.title}{scope} · {incident.status.value} — "
            f"`timeline {incident.id}`, `request <action> incident={incident.id}`")


def digest_text(lines: Sequence[str], *, limit: int) -> str:
    """One message for the held-back cards of one channel (buttons cannot be offered here: commands are)."""
    shown = list(lines[:MAX_LINES])
    more = len(lines) - len(shown)
    head = (f"📥 Digest: {len(lines)} new item(s) got no card of their own (this channel already had {limit} "
            "new cards this minute). Nothing was dropped; act on them with the commands shown "
            "(`/signoff …` in Slack and Discord). `incidents` lists every open incident, `list` every "
            "pending request.")
    tail = [f"… and {more} more: `list` and `incidents` show them all."] if more > 0 else []
    return "\n".join([head, *shown, *tail])
