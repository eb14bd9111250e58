"""Break glass: a pending request nobody could sign in time executes on one allowed person's signature, and
a review opens that `[breakglass] reviewers` countersign or dispute within `review_within`.

Pure transitions: each takes the request, who acts and when, and returns (new request, events) or raises a
typed refusal saying why and what would work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from core.domain.approvals import ApprovalRequest, Signature, Transition, signed_digest
from core.domain.breakglass_review import BreakGlass, BreakglassRules, Dispute, ReviewStatus
from core.domain.events import EventType, NewEvent
from core.domain.oncall import schedule_name
from core.domain.policy import Person, format_duration
from core.domain.request_parts import RequestStatus
from core.errors import NotAuthorized, NotPending, Refusal

MAX_REASON = 500


class BreakglassDisabled(Refusal):
    code = "breakglass_disabled"


class BreakglassNoReason(Refusal):
    code = "breakglass_no_reason"


class BreakglassNotAllowed(NotAuthorized):
    code = "breakglass_not_allowed"


class BreakglassTooEarly(Refusal):
    code = "breakglass_too_early"


class BreakglassReviewOpen(Refusal):
    code = "breakglass_review_open"


class ReviewRefused(Refusal):
    code = "review_refused"


def disabled(source: str) -> BreakglassDisabled:
    return BreakglassDisabled(
        f"Break glass is not configured: the policy ({source}) has no [breakglass] section, so a request "
        "executes only with its quorum. Ask an admin to add [breakglass] with `who` (groups or schedules).")


def allowed(rules: BreakglassRules, person: Person, on_call: Iterable[str] = ()) -> bool:
    """In one of `who`'s groups, or the person on call now for one of its schedules (`on_call`: their names)."""
    groups = {w for w in rules.who if schedule_name(w) is None}
    return bool(person.groups & groups) or person.name in set(on_call)


def _event(request: ApprovalRequest, at: datetime, type_: EventType, title: str, *, actor: str, role: str,
           detail: str = "", digest: str | None = None) -> NewEvent:
    return NewEvent(at=at, type=type_, status=str(request.status), title=title, detail=detail, actor=actor,
                    actor_role=role, request_id=request.id, incident_id=request.incident_id, digest=digest)


def break_glass(
    request: ApprovalRequest, *, by: Person, reason: str | None, at: datetime, rules: BreakglassRules | None,
    source: str = "the policy", on_call: Iterable[str] = (), open_review: str | None = None, via: str = "console",
    could_sign: tuple[str, ...] = (),
) -> Transition:
    """Approve `request` on `by`'s one signature. `open_review`: the id of a request whose break glass by `by`
    still awaits review (refused until it is cleared)."""
    if rules is None:
        raise disabled(source)
    reason = (reason or "").strip()
    if not reason:
        raise BreakglassNoReason(
            f"Break glass needs a reason everyone can read later, like `breakglass {request.id} "
            "reason=\"checkout down, nobody answers\"`.", request.id)
    if len(reason) > MAX_REASON:
        raise BreakglassNoReason(f"The reason is {len(reason)} characters long; keep it under {MAX_REASON}.",
                                 request.id)
    if not allowed(rules, by, on_call):
        raise BreakglassNotAllowed(
            f"Only {', '.join(rules.who)} may break glass; you ({by.name}) are not in them. Ask one of them, "
            f"or get {request.id} its {request.quorum} signature(s).", request.id)
    if request.status is not RequestStatus.pending:
        raise NotPending(f"{request.id} is {request.status}; break glass works only on a pending request.",
                         request.id)
    if open_review is not None:
        raise BreakglassReviewOpen(
            f"Your break glass on {open_review} awaits review; until reviewers countersign it you cannot break "
            f"glass again. Ask {', '.join(rules.reviewers) or 'the reviewers'} to review {open_review}.",
            request.id)
    possible = request.created_at + rules.after
    if at < possible:
        raise BreakglassTooEarly(
            f"{request.id} has waited {format_duration(at - request.created_at)}; break glass becomes possible "
            f"after {format_duration(rules.after)}, at {possible:%H:%M:%S} UTC. Until then, ask for signatures.",
            request.id)
    record = BreakGlass(by=by.name, reason=reason, at=at, review_due=at + rules.review_within,
                        reviewers=rules.reviewers, review_quorum=rules.review_quorum,
                        could_sign=tuple(p for p in could_sign if p != by.name))
    updated = request.model_copy(update={
        "signatures": (*request.signatures, Signature(person=by.name, via=via, at=at, comment=reason)),
        "status": RequestStatus.approved, "approved_at": at, "decided_at": at, "decided_by": by.name,
        "version": request.version + 1, "breakglass": record,
    })
    title = f"🚨 break glass by {by.name}: {reason}"
    return Transition(updated, (
        _event(updated, at, EventType.signed, f"{by.name} signed (break glass)", actor=by.name, role="breakglass",
               detail=f"via {via}: {reason}", digest=signed_digest(request)),
        _event(updated, at, EventType.breakglass, title, actor=by.name, role="breakglass",
               detail=f"{request.signed}/{request.quorum} signatures; review by "
                      f"{', '.join(rules.reviewers) or 'the reviewers'} due {record.review_due:%Y-%m-%d %H:%M} UTC"),
        _event(updated, at, EventType.approved, f"approved by break glass ({by.name})", actor="signoff",
               role="system"),
    ))


def _reviewers_text(reviewers: Iterable[str]) -> str:
    groups = [r for r in reviewers if schedule_name(r) is None]
    schedules = [r for r in reviewers if schedule_name(r) is not None]
    parts = ([f"members of {', '.join(groups)}"] if groups else []) + \
        ([f"the person on call for {', '.join(schedules)}"] if schedules else [])
    return " or ".join(parts) or "the reviewers (the policy names none: set [breakglass] reviewers)"


def _review(request: ApprovalRequest, by: Person, on_call: Iterable[str] = ()) -> BreakGlass:
    """`on_call`: the people on call now for the schedules among the reviewers (`oncall.<name>`)."""
    record = request.breakglass
    if record is None:
        raise ReviewRefused(f"{request.id} was not executed by break glass; there is nothing to review.",
                            request.id)
    if not (by.groups & set(record.reviewers)) and by.name not in set(on_call):
        raise NotAuthorized(f"Only {_reviewers_text(record.reviewers)} review break glass; you ({by.name}) are not "
                            "one of them.", request.id)
    if by.name == record.by:
        raise ReviewRefused(f"You broke the glass on {request.id}, so you cannot review it yourself.",
                            request.id)
    if record.cleared:
        raise ReviewRefused(f"The break glass on {request.id} is already countersigned by "
                            f"{', '.join(record.countersigned_by)}.", request.id)
    return record


def countersign(request: ApprovalRequest, *, by: Person, at: datetime, on_call: Iterable[str] = ()) -> Transition:
    record = _review(request, by, on_call)
    if by.name in record.countersigned_by:
        raise ReviewRefused(f"You already countersigned the break glass on {request.id}.", request.id)
    signed = (*record.countersigned_by, by.name)
    done = len(signed) >= record.review_quorum
    new = record.model_copy(update={"countersigned_by": signed,
                                    **({"status": ReviewStatus.countersigned} if done else {})})
    updated = request.model_copy(update={"breakglass": new, "version": request.version + 1})
    tail = "review closed" if done else f"{len(signed)}/{record.review_quorum} countersignatures"
    return Transition(updated, (_event(
        updated, at, EventType.countersigned, f"{by.name} countersigned the break glass ({tail})", actor=by.name,
        role="reviewer"),))


def dispute(request: ApprovalRequest, *, by: Person, reason: str | None, at: datetime,
            on_call: Iterable[str] = ()) -> Transition:
    record = _review(request, by, on_call)
    reason = (reason or "").strip()
    if not reason:
        raise ReviewRefused(f"A dispute needs a reason, like `dispute {request.id} reason=\"could have waited\"`.",
                            request.id)
    new = record.model_copy(update={"disputes": (*record.disputes, Dispute(by=by.name, reason=reason[:MAX_REASON],
                                                                             at=at)),
                                    "status": ReviewStatus.disputed})
    updated = request.model_copy(update={"breakglass": new, "version": request.version + 1})
    return Transition(updated, (_event(
        updated, at, EventType.disputed, f"{by.name} disputed the break glass: {reason}", actor=by.name,
        role="reviewer"),))


def overdue(request: ApprovalRequest, *, at: datetime) -> Transition:
    """Still not countersigned after `review_within`: marked overdue and reminded, once."""
    record = request.breakglass
    if record is None or record.cleared or record.reminded_at is not None or at < record.review_due:
        raise ReviewRefused(f"The break glass on {request.id} is not overdue.", request.id)
    status = ReviewStatus.disputed if record.status is ReviewStatus.disputed else ReviewStatus.overdue
    new = record.model_copy(update={"status": status, "reminded_at": at})
    updated = request.model_copy(update={"breakglass": new, "version": request.version + 1})
    return Transition(updated, (_event(
        updated, at, EventType.review_overdue, f"break glass review overdue (due {record.review_due:%Y-%m-%d %H:%M} "
        f"UTC; {len(record.countersigned_by)}/{record.review_quorum} countersignatures)", actor="signoff",
        role="system"),))
