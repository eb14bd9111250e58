"""The approval request and its pure transitions.

Every transition takes the request, who acts and when, and returns the new request with
the timeline events it caused, or raises a typed refusal. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from core.domain.blast import BlastRadius
from core.domain.breakglass_review import BreakGlass
from core.domain.changes import Preview
from core.domain.confirmation import check_confirmation
from core.domain.events import EventType, NewEvent, canonical_json
from core.domain.freeze import FreezeInForce
from core.domain.operations import Operation
from core.domain.pinning import Pin
from core.domain.policy import ANYONE, Person, Risk, SignRule
from core.domain.request_parts import (
    MAX_COMMENT_LENGTH,
    TERMINAL_STATUSES,
    Outcome,
    Place,
    Proposal,
    RequestStatus,
    Signature,
)
from core.domain.verify import Verification
from core.errors import AlreadySigned, NotAuthorized, NotPending, RequestExpired, SelfApprovalForbidden

__all__ = [
    "MAX_COMMENT_LENGTH", "TERMINAL_STATUSES", "ApprovalRequest", "Outcome", "Place", "Proposal", "RequestStatus",
    "Signature", "Transition", "signed_digest",
]


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    operation: Operation
    action: str
    requested_by: str
    requested_via: str
    reason: str | None = None
    incident_id: str | None = None
    stated_risk: Risk | None = None
    risk: Risk
    quorum: int
    approvers: tuple[str, ...]
    expire_after_s: int
    created_at: datetime
    expires_at: datetime
    status: RequestStatus = RequestStatus.pending
    version: int = 0
    signatures: tuple[Signature, ...] = ()
    decided_by: str | None = None
    decided_at: datetime | None = None
    approved_at: datetime | None = None
    blast: BlastRadius | None = None
    outcome: Outcome | None = None
    proposal: Proposal | None = None
    places: tuple[Place, ...] = ()
    # Paging markers: set once, under the row's version, so replicas escalate and remind exactly once.
    escalated_at: datetime | None = None
    escalated_to: tuple[str, ...] = ()
    reminded_at: datetime | None = None
    verification: Verification | None = None
    # Signers whose signature no longer counts: the risk was raised and its rule does not admit them.
    uncounted: tuple[str, ...] = ()
    freeze: FreezeInForce | None = None  # the change freeze in force when it was made (it raised the risk)
    # The cluster the request is for, by its name in the policy (or the kubeconfig context). None: made before
    # signoff served several clusters. The operation names it too when the policy has [clusters].
    cluster: str | None = None
    confirm: bool = False  # its risk level's `confirm`: each signer types the target's name
    pin: Pin | None = None  # the target as the signers saw it (core/domain/pinning.py)
    waiting_for: str | None = None  # approved, waiting its turn on its target behind this request
    preview: Preview | None = None  # what the dry run made when it was requested showed it would change
    breakglass: BreakGlass | None = None  # executed on one signature (core/domain/breakglass.py), with its review

    @property
    def counted(self) -> tuple[Signature, ...]:
        """The signatures that count towards the quorum under the request's current rule."""
        return tuple(s for s in self.signatures if s.person not in self.uncounted)

    @property
    def signed(self) -> int:
        return len(self.counted)

    @property
    def signers(self) -> tuple[str, ...]:
        """Everyone who signed, counted or not (one person signs once)."""
        return tuple(s.person for s in self.signatures)

    @property
    def counted_signers(self) -> tuple[str, ...]:
        return tuple(s.person for s in self.counted)

    @property
    def sign_rule(self) -> SignRule:
        return SignRule(quorum=self.quorum, approvers=self.approvers)

    def approval_fresh(self, now: datetime) -> bool:
        """An approval is acted on only within the expiry window after it was given."""
        if self.approved_at is None:
            return False
        return now <= self.approved_at + timedelta(seconds=self.expire_after_s)


def signed_digest(request: ApprovalRequest) -> str:
    """What a signature stands for: the request, its exact operation, and the risk and quorum it was signed at.

    Carried by the `requested` and every `signed` event and recomputed before anything runs, so an operation
    edited in the database after it was signed is never executed.
    """
    operation = request.operation.model_dump(mode="json")
    for key in ("cluster", "identity"):  # a single cluster, signoff's own account: older digests keep
        if operation.get(key) is None:
            operation.pop(key, None)
    body = {
        "request_id": request.id, "operation": operation,
        "risk": str(request.risk), "quorum": request.quorum, "approvers": list(request.approvers),
    }
    if request.uncounted:  # only present after a raise set signatures aside, so older digests stay valid
        body["uncounted"] = list(request.uncounted)
    if request.pin is not None:  # the target as signed: a tampered fingerprint is caught like a tampered operation
        body["pin"] = request.pin.digest_part()
    if request.confirm:  # signers typed the name: switching that off in the database is caught too
        body["confirm"] = True
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


class Transition(NamedTuple):
    request: ApprovalRequest
    events: tuple[NewEvent, ...]


def _event(
    request: ApprovalRequest, at: datetime, type_: EventType, title: str, *,
    actor: str = "signoff", role: str = "system", detail: str = "", status: RequestStatus | None = None,
    digest: str | None = None,
) -> NewEvent:
    return NewEvent(
        at=at, type=type_, status=str(status or request.status), title=title, detail=detail,
        actor=actor, actor_role=role, request_id=request.id, incident_id=request.incident_id, digest=digest,
    )


def new_request(
    *, request_id: str, operation: Operation, action: str, requested_by: Person, via: str, at: datetime,
    risk: Risk, stated_risk: Risk | None, rule: SignRule, expire_after: timedelta, reason: str | None,
    incident_id: str | None, blast: BlastRadius | None, proposal: Proposal | None, places: tuple[Place, ...],
    freeze: FreezeInForce | None = None,
    cluster: str | None = None, pin: Pin | None = None,
) -> Transition:
    request = ApprovalRequest(
        id=request_id, operation=operation, action=action, requested_by=requested_by.name, requested_via=via,
        reason=reason, incident_id=incident_id, stated_risk=stated_risk, risk=risk, quorum=rule.quorum,
        approvers=rule.approvers, expire_after_s=int(expire_after.total_seconds()), created_at=at,
        expires_at=at + expire_after, blast=blast, proposal=proposal, places=places, freeze=freeze,
        cluster=cluster, confirm=rule.confirm, pin=pin,
    )
    raised = ""
    if freeze is not None:
        raised = f" (raised one level by {freeze.describe()})"
    elif stated_risk and stated_risk != risk:
        raised = f" (raised from {stated_risk} by the operation's risk floor)"
    detail = f"risk {risk}{raised}; needs {rule.quorum} signature(s) from {rule.describe_approvers()}"
    if proposal is not None:
        detail += f"; proposed by the {proposal.track} track"
    event = _event(
        request, at, EventType.requested, f"{requested_by.name} requested {operation.command()}",
        actor=requested_by.name, role="requester", detail=detail, digest=signed_digest(request),
    )
    return Transition(request, (event,))


def check_signer(request: ApprovalRequest, by: Person, at: datetime) -> None:
    """Raise the refusal a click by `by` would get, without changing anything."""
    if request.status is not RequestStatus.pending:
        raise NotPending(
            f"{request.id} is {request.status}, so it can no longer be signed or rejected.", request.id
        )
    if at >= request.expires_at:
        raise RequestExpired(
            f"{request.id} expired at {request.expires_at:%H:%M UTC} without reaching its quorum; "
            "ask for it again if it is still needed.",
            request.id,
        )
    if by.name == request.requested_by:
        raise SelfApprovalForbidden(
            f"You asked for {request.id}, so you can't sign it: "
            f"{request.sign_rule.describe_approvers()} must sign instead.",
            request.id,
        )
    if not request.sign_rule.admits(by):
        groups = ", ".join(sorted(by.groups)) or "no groups"
        raise NotAuthorized(
            f"Only {request.sign_rule.describe_approvers()} may sign {request.risk}-risk requests like "
            f"{request.id}; you are in {groups}. Ask someone in "
            f"{', '.join(a for a in request.approvers if a != ANYONE)} to sign.",
            request.id,
        )


def may_sign(request: ApprovalRequest, by: Person, at: datetime) -> None:
    """Raise the refusal signing would get (already signed included), without changing anything."""
    check_signer(request, by, at)
    if by.name in request.signers:
        raise AlreadySigned(
            f"You already signed {request.id} ({request.signed}/{request.quorum}); "
            "one person signs once, whichever chat they use.",
            request.id,
        )


def sign(request: ApprovalRequest, *, by: Person, at: datetime, via: str = "console",
         comment: str | None = None, confirmation: str | None = None) -> Transition:
    may_sign(request, by, at)
    check_confirmation(request, confirmation)
    signatures = (*request.signatures, Signature(person=by.name, via=via, at=at, comment=comment or None))
    # Only signatures the current rule admits count: after a raised risk, some earlier ones no longer do.
    counted = request.signed + 1
    reached = counted >= request.quorum
    updated = request.model_copy(update={
        "signatures": signatures,
        "version": request.version + 1,
        **({"status": RequestStatus.approved, "approved_at": at, "decided_at": at} if reached else {}),
    })
    events = [_event(
        updated, at, EventType.signed, f"{by.name} signed ({counted}/{request.quorum})",
        actor=by.name, role="approver", detail=f"via {via}" + (f": {comment}" if comment else ""),
        digest=signed_digest(request),
    )]
    if reached:
        events.append(_event(
            updated, at, EventType.approved, f"quorum reached: approved by {', '.join(updated.counted_signers)}",
        ))
    return Transition(updated, tuple(events))


def reject(request: ApprovalRequest, *, by: Person, at: datetime, via: str = "console",
           reason: str | None = None) -> Transition:
    """A veto: any authorized approver (not the requester) ends the request."""
    check_signer(request, by, at)
    updated = request.model_copy(update={
        "status": RequestStatus.rejected, "version": request.version + 1,
        "decided_by": by.name, "decided_at": at,
    })
    detail = f"via {via}" + (f": {reason}" if reason else "")
    return Transition(updated, (_event(
        updated, at, EventType.rejected, f"{by.name} vetoed the request", actor=by.name, role="approver",
        detail=detail,
    ),))


def cancel(request: ApprovalRequest, *, by: Person, at: datetime) -> Transition:
    if by.name != request.requested_by:
        raise NotAuthorized(
            f"Only {request.requested_by}, who asked for {request.id}, can cancel it; "
            "approvers can reject it instead.",
            request.id,
        )
    if request.status is not RequestStatus.pending:
        raise NotPending(f"{request.id} is {request.status}; only pending requests can be cancelled.", request.id)
    updated = request.model_copy(update={
        "status": RequestStatus.cancelled, "version": request.version + 1, "decided_by": by.name, "decided_at": at,
    })
    return Transition(updated, (_event(
        updated, at, EventType.cancelled, f"{by.name} cancelled the request", actor=by.name, role="requester",
    ),))


def resolved_on_its_own(request: ApprovalRequest, *, at: datetime, alert: str) -> Transition:
    """Pending when all of its incident's alerts resolved: cancelled, nothing ran ([incidents] cancel_when_resolved)."""
    updated = request.model_copy(update={
        "status": RequestStatus.cancelled, "version": request.version + 1, "decided_by": "alertmanager",
        "decided_at": at,
    })
    return Transition(updated, (_event(
        updated, at, EventType.cancelled, f"cancelled: the alert {alert} resolved on its own", actor="alertmanager",
        role="system", detail=f"all of the incident's alerts resolved at {at:%Y-%m-%d %H:%M:%S} UTC; nothing ran",
    ),))


def expire(request: ApprovalRequest, *, at: datetime) -> Transition:
    """Pending past its deadline, or approved but never run within the window (a restart found it)."""
    if request.status is RequestStatus.pending:
        why = f"expired without quorum ({request.signed}/{request.quorum} signatures)"
    elif request.status is RequestStatus.approved:
        why = "approval expired before execution: nothing runs on a stale approval; ask again if still needed"
    else:
        raise NotPending(f"{request.id} is {request.status} and cannot expire.", request.id)
    updated = request.model_copy(update={
        "status": RequestStatus.expired, "version": request.version + 1, "decided_at": at,
    })
    return Transition(updated, (_event(updated, at, EventType.expired, why),))


def raise_risk(request: ApprovalRequest, *, risk: Risk, rule: SignRule, at: datetime, why: str,
               people: Mapping[str, Person]) -> Transition:
    """Fresh facts (or a read that failed) put the floor above what was signed: back to pending.

    The new quorum and approvers apply, with a fresh expiry window. Only the signatures the new rule admits
    still count (`people` says who is in which group); the others stay on record, set aside, and the card
    says so. Every raise weighs all the signatures again.
    """
    if request.status is not RequestStatus.approved:
        raise NotPending(f"{request.id} is {request.status}, not approved.", request.id)
    uncounted = tuple(s.person for s in request.signatures
                      if not rule.admits(people.get(s.person) or Person(name=s.person)))
    updated = request.model_copy(update={
        "status": RequestStatus.pending, "version": request.version + 1, "risk": risk, "quorum": rule.quorum,
        "approvers": rule.approvers, "confirm": rule.confirm, "approved_at": None, "decided_at": None,
        "uncounted": uncounted, "expires_at": at + timedelta(seconds=request.expire_after_s),
    })
    detail = (f"{why}; risk {request.risk} → {risk}: needs {rule.quorum} signature(s) from "
              f"{rule.describe_approvers()}, {updated.signed} given")
    if uncounted:
        detail += f"; no longer counts: {', '.join(uncounted)}"
    return Transition(updated, (_event(
        updated, at, EventType.risk_raised, "risk floor raised before execution: more signatures needed",
        detail=detail, digest=signed_digest(updated),
    ),))


def quorum_problem(request: ApprovalRequest) -> str | None:
    """Checked before anything runs: why an approved request does not have its quorum of counted signatures."""
    if request.signed >= request.quorum or request.breakglass is not None:
        return None
    aside = f"; {', '.join(request.uncounted)} no longer count(s) at {request.risk} risk" if request.uncounted else ""
    return (f"{request.id} has {request.signed}/{request.quorum} counted signature(s) from "
            f"{request.sign_rule.describe_approvers()}{aside}")


def escalate(request: ApprovalRequest, *, at: datetime, to: tuple[str, ...]) -> Transition:
    """Still short of its quorum after the level's `escalate_after`: the escalation groups are paged once."""
    if request.status is not RequestStatus.pending:
        raise NotPending(f"{request.id} is {request.status}; only a pending request escalates.", request.id)
    updated = request.model_copy(update={"version": request.version + 1, "escalated_at": at, "escalated_to": to})
    detail = f"{request.signed}/{request.quorum} signatures after {int((at - request.created_at).total_seconds())} s"
    return Transition(updated, (_event(updated, at, EventType.escalated, "escalated to " + ", ".join(to),
                                       detail=detail),))


def remind(request: ApprovalRequest, *, at: datetime, waiting: tuple[str, ...]) -> Transition:
    """Close to expiry without its quorum: the approvers who have not signed are reminded once."""
    if request.status is not RequestStatus.pending:
        raise NotPending(f"{request.id} is {request.status}; only a pending request is reminded.", request.id)
    updated = request.model_copy(update={"version": request.version + 1, "reminded_at": at})
    title = "reminded " + (", ".join(waiting) if waiting else "the approvers")
    return Transition(updated, (_event(updated, at, EventType.reminded, title,
                                       detail=f"{request.signed}/{request.quorum} signatures"),))


def is_overdue(request: ApprovalRequest, now: datetime) -> bool:
    if request.status is RequestStatus.pending:
        return now >= request.expires_at
    if request.status is RequestStatus.approved:
        return not request.approval_fresh(now)
    return False
