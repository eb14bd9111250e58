"""A request's life after its approval: claimed, executed, verified (or interrupted), as pure transitions.

Split from `approvals` (what happens before the approval: ask, sign, veto, expire) so each stays one job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.domain.approvals import ApprovalRequest, Transition, _event
from core.domain.cluster import ClusterResult
from core.domain.events import EventType
from core.domain.request_parts import Outcome, RequestStatus
from core.domain.verify import Progress, Verification
from core.errors import NotPending


def claimed(request: ApprovalRequest, *, worker: str, at: datetime) -> Transition:
    if request.status is not RequestStatus.approved:
        raise NotPending(f"{request.id} is {request.status}, not approved.", request.id)
    updated = request.model_copy(update={"status": RequestStatus.executing, "version": request.version + 1})
    return Transition(updated, (_event(
        updated, at, EventType.claimed, "execution started", detail=f"claimed by worker {worker}",
    ),))


def finished(request: ApprovalRequest, *, outcome: Outcome) -> Transition:
    if request.status is not RequestStatus.executing:
        raise NotPending(f"{request.id} is {request.status}, not executing.", request.id)
    updated = request.model_copy(update={
        "status": outcome.status, "version": request.version + 1, "outcome": outcome,
    })
    type_ = {
        RequestStatus.succeeded: EventType.executed,
        RequestStatus.failed: EventType.failed,
        RequestStatus.blocked: EventType.blocked,
        RequestStatus.interrupted: EventType.interrupted,
    }[outcome.status]
    detail = outcome.reason or ""
    if outcome.duration_ms:
        detail = (detail + "; " if detail else "") + f"took {outcome.duration_ms} ms"
    return Transition(updated, (_event(updated, outcome.finished_at, type_, outcome.summary, detail=detail),))


def verifying(request: ApprovalRequest, *, outcome: Outcome, baseline: ClusterResult, at: datetime,
              deadline: timedelta, timeout_from: str = "policy") -> Transition:
    """The API server accepted the real call; now follow its effect until it holds or `deadline` passes."""
    if request.status is not RequestStatus.executing:
        raise NotPending(f"{request.id} is {request.status}, not executing.", request.id)
    verification = Verification(started_at=at, deadline_at=at + deadline, next_look_at=at, baseline=baseline,
                                timeout_from=timeout_from)
    updated = request.model_copy(update={
        "status": RequestStatus.verifying, "version": request.version + 1, "outcome": outcome,
        "verification": verification,
    })
    detail = "the API server accepted the call; verifying its effect"
    if outcome.duration_ms:
        detail += f"; took {outcome.duration_ms} ms"
    return Transition(updated, (_event(updated, at, EventType.executed, outcome.summary, detail=detail),))


def looked(request: ApprovalRequest, *, progress: Progress, next_look_at: datetime,
           deadline_at: datetime | None = None, timeout_from: str | None = None) -> ApprovalRequest:
    """One look at a verifying request's effect, remembered (no timeline event: progress is not history)."""
    verification = request.verification
    if request.status is not RequestStatus.verifying or verification is None:
        raise NotPending(f"{request.id} is {request.status}, not verifying.", request.id)
    changes: dict[str, object] = {"progress": progress, "next_look_at": next_look_at,
                                  "looks": verification.looks + 1}
    if deadline_at is not None:
        changes["deadline_at"] = deadline_at
    if timeout_from is not None:
        changes["timeout_from"] = timeout_from
    return request.model_copy(update={
        "version": request.version + 1, "verification": verification.model_copy(update=changes),
    })


def verified(request: ApprovalRequest, *, outcome: Outcome, progress: Progress) -> Transition:
    """Verification ended: `succeeded` (the effect holds) or `failed` (the deadline passed, with reasons)."""
    if request.status is not RequestStatus.verifying or request.verification is None:
        raise NotPending(f"{request.id} is {request.status}, not verifying.", request.id)
    verification = request.verification.model_copy(update={"progress": progress,
                                                            "looks": request.verification.looks + 1})
    updated = request.model_copy(update={
        "status": outcome.status, "version": request.version + 1, "outcome": outcome,
        "verification": verification,
    })
    type_ = EventType.verified if outcome.status is RequestStatus.succeeded else EventType.failed
    return Transition(updated, (_event(updated, outcome.finished_at, type_, outcome.summary,
                                       detail=outcome.reason or ""),))


def interrupted(request: ApprovalRequest, *, at: datetime) -> Transition:
    """Found mid-flight after a restart: the outcome is unknown, so it is reported, never re-run."""
    return finished(request, outcome=Outcome(
        status=RequestStatus.interrupted,
        summary="execution was interrupted (signoff stopped mid-flight); the outcome is unknown",
        reason="check the cluster before asking again; signoff never re-runs an interrupted operation",
        finished_at=at,
    ))
