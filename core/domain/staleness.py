"""The pure transitions of pinning: a request whose target changed goes `stale`; one that waits its turn
on its target says for whom (core/domain/pinning.py says what is pinned)."""

from __future__ import annotations

from datetime import datetime

from core.domain.approvals import ApprovalRequest, Outcome, RequestStatus, Transition
from core.domain.events import EventType, NewEvent
from core.domain.pinning import target_key
from core.errors import NotPending

STALE_REASON = "Nobody signed the target as it is now; use Request again to ask for signatures on it."


def went_stale(request: ApprovalRequest, *, at: datetime, what: str) -> Transition:
    """pending | approved → stale: the target's pinned state changed (`what`: `image (api): v2 → v9`)."""
    if request.status not in (RequestStatus.pending, RequestStatus.approved):
        raise NotPending(f"{request.id} is {request.status}; only a pending or approved request goes stale.",
                         request.id)
    summary = f"the target changed after the request was made: {what}; nothing was run"
    outcome = Outcome(status=RequestStatus.stale, summary=summary, reason=STALE_REASON, finished_at=at)
    updated = request.model_copy(update={
        "status": RequestStatus.stale, "version": request.version + 1, "decided_at": at, "outcome": outcome,
    })
    event = NewEvent(at=at, type=EventType.stale, status=str(RequestStatus.stale),
                     title="stale: the target changed since it was signed; nothing ran", detail=what,
                     request_id=request.id, incident_id=request.incident_id)
    return Transition(updated, (event,))


def waiting(request: ApprovalRequest, *, at: datetime, behind: str) -> Transition:
    """An approved request waits for `behind` (executing or verifying, or approved earlier, on its target)."""
    if request.status is not RequestStatus.approved:
        raise NotPending(f"{request.id} is {request.status}, not approved.", request.id)
    updated = request.model_copy(update={"version": request.version + 1, "waiting_for": behind})
    event = NewEvent(at=at, type=EventType.waiting, status=str(RequestStatus.approved),
                     title=f"waiting for {behind}: one operation per target at a time",
                     request_id=request.id, incident_id=request.incident_id)
    return Transition(updated, (event,))


def queue_key(request: ApprovalRequest) -> str | None:
    """The target a request queues on (cluster + kind of object + namespace + name); None for what never waits
    (a node: a cordon, an uncordon and a drain of one node do not race on a template)."""
    op = request.operation
    if op.target == "node":
        return None
    return target_key(request.cluster or op.cluster, op.target, op.namespace, op.name)
