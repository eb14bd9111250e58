"""Is the stored request still what was signed? Checked before anything runs and by `audit verify`.

The stored request (its operation, risk, quorum and signatures) lives in a row someone with database access
could edit; its timeline events are hash-chained (with `SIGNOFF_AUDIT_KEY`, keyed). A request is bound to its
events when its `requested` event and one `signed` event per signature carry the digest of the request as stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.domain.approvals import ApprovalRequest, signed_digest
from core.domain.events import EventType, TimelineEvent, authentic


def binding_problem(request: ApprovalRequest, events: Sequence[TimelineEvent], key: bytes | None = None) -> str | None:
    """None when the request matches what was requested and signed; else the first mismatch, in a sentence."""
    for event in events:
        if not authentic(event, key):
            return f"timeline event {event.seq} of {request.id} does not match its hash"
    digest = signed_digest(request)
    # What signoff itself stated the request to be: when requested, and after each raise of its risk floor.
    stated = [e.digest for e in events if e.type in (EventType.requested, EventType.risk_raised)]
    if not stated:
        return f"{request.id} has no `requested` event"
    if stated[-1] != digest:
        return (f"{request.id}'s stored operation, risk or quorum (`{request.operation.command()}`, "
                f"{request.risk}, {request.quorum}) is not what was requested")
    signed_by = {e.actor: e.digest for e in events if e.type is EventType.signed}
    for signature in request.signatures:
        if signature.person not in signed_by:
            return f"{request.id} lists a signature by {signature.person} that no `signed` event records"
        if signed_by[signature.person] not in stated:
            return f"{request.id}'s stored operation is not what {signature.person} signed"
    return None
