from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.domain import approvals, lifecycle
from core.domain.approvals import ApprovalRequest, Outcome, RequestStatus
from core.domain.events import EventType
from core.domain.operations import parse_operation
from core.domain.policy import Person, Risk, SignRule
from core.errors import (
    AlreadySigned,
    NotAuthorized,
    NotPending,
    Refusal,
    RequestExpired,
    SelfApprovalForbidden,
)

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ALICE = Person(name="alice", groups=frozenset({"sre"}))
BOB = Person(name="bob", groups=frozenset({"sre", "leads"}))
CAROL = Person(name="carol", groups=frozenset({"sre"}))
DAVE = Person(name="dave", groups=frozenset({"leads"}))
MALLORY = Person(name="mallory", groups=frozenset({"dev"}))


def make(quorum: int = 2, approvers: tuple[str, ...] = ("sre",), status: RequestStatus = RequestStatus.pending,
         **changes: object) -> ApprovalRequest:
    created = approvals.new_request(
        request_id="R-1", operation=parse_operation("rollout restart deployment/api -n prod"),
        action="rollout restart deployment/api -n prod", requested_by=ALICE, via="slack", at=T0,
        risk=Risk.high, stated_risk=Risk.high, rule=SignRule(quorum=quorum, approvers=approvers),
        expire_after=timedelta(minutes=30), reason="slow", incident_id=None, blast=None, proposal=None,
        places=(),
    ).request
    return created.model_copy(update={"status": status, **changes})


def test_new_request_records_one_requested_event() -> None:
    created = approvals.new_request(
        request_id="R-7", operation=parse_operation("cordon node-1"), action="cordon node-1", requested_by=ALICE,
        via="console", at=T0, risk=Risk.high, stated_risk=Risk.low, rule=SignRule(quorum=2),
        expire_after=timedelta(minutes=30), reason=None, incident_id="INC-1", blast=None, proposal=None,
        places=(),
    )
    assert created.request.status is RequestStatus.pending
    assert created.request.expires_at == T0 + timedelta(minutes=30)
    (event,) = created.events
    assert event.type is EventType.requested
    assert event.actor == "alice" and event.incident_id == "INC-1"
    assert "raised from low" in event.detail


SIGN_REFUSALS = [
    # (who, request state, extra changes, at, error)
    ("requester signs own request", ALICE, RequestStatus.pending, {}, T0, SelfApprovalForbidden),
    ("outsider not in approver groups", MALLORY, RequestStatus.pending, {}, T0, NotAuthorized),
    ("leads only member for sre rule", DAVE, RequestStatus.pending, {}, T0, NotAuthorized),
    ("after expiry", BOB, RequestStatus.pending, {}, T0 + timedelta(minutes=30), RequestExpired),
    ("already approved", BOB, RequestStatus.approved, {}, T0, NotPending),
    ("executing", BOB, RequestStatus.executing, {}, T0, NotPending),
    ("succeeded", BOB, RequestStatus.succeeded, {}, T0, NotPending),
    ("failed", BOB, RequestStatus.failed, {}, T0, NotPending),
    ("blocked", BOB, RequestStatus.blocked, {}, T0, NotPending),
    ("rejected", BOB, RequestStatus.rejected, {}, T0, NotPending),
    ("expired", BOB, RequestStatus.expired, {}, T0, NotPending),
    ("cancelled", BOB, RequestStatus.cancelled, {}, T0, NotPending),
    ("interrupted", BOB, RequestStatus.interrupted, {}, T0, NotPending),
]


@pytest.mark.parametrize(("case", "who", "status", "changes", "at", "error"), SIGN_REFUSALS,
                         ids=[c[0] for c in SIGN_REFUSALS])
def test_sign_refusals(case: str, who: Person, status: RequestStatus, changes: dict[str, object],
                       at: datetime, error: type[Refusal]) -> None:
    request = make(status=status, **changes)
    with pytest.raises(error) as caught:
        approvals.sign(request, by=who, at=at)
    assert caught.value.request_id == "R-1"
    assert len(caught.value.message) > 20  # a sentence, not a code


@pytest.mark.parametrize(("case", "who", "status", "changes", "at", "error"), SIGN_REFUSALS,
                         ids=[c[0] for c in SIGN_REFUSALS])
def test_reject_has_the_same_gate(case: str, who: Person, status: RequestStatus, changes: dict[str, object],
                                  at: datetime, error: type[Refusal]) -> None:
    with pytest.raises(error):
        approvals.reject(make(status=status, **changes), by=who, at=at)


def test_second_signature_by_same_person_refused() -> None:
    once = approvals.sign(make(), by=BOB, at=T0).request
    with pytest.raises(AlreadySigned) as caught:
        approvals.sign(once, by=BOB, at=T0 + timedelta(seconds=1), via="discord")
    assert "one person signs once" in caught.value.message


@pytest.mark.parametrize("quorum", [1, 2, 3])
def test_exact_quorum_approves_on_the_last_signature(quorum: int) -> None:
    request = make(quorum=quorum, approvers=("*",))
    signers = [BOB, CAROL, DAVE]
    for index in range(quorum):
        transition = approvals.sign(request, by=signers[index], at=T0 + timedelta(seconds=index))
        request = transition.request
        types = [e.type for e in transition.events]
        if index < quorum - 1:
            assert request.status is RequestStatus.pending
            assert types == [EventType.signed]
        else:
            assert request.status is RequestStatus.approved
            assert types == [EventType.signed, EventType.approved]
            assert request.approved_at == T0 + timedelta(seconds=index)
    assert request.signed == quorum
    assert request.version == quorum


def test_veto_by_any_approver_ends_the_request() -> None:
    signed = approvals.sign(make(quorum=3), by=BOB, at=T0).request
    vetoed = approvals.reject(signed, by=CAROL, at=T0, reason="not during the sale").request
    assert vetoed.status is RequestStatus.rejected
    assert vetoed.decided_by == "carol"
    with pytest.raises(NotPending):
        approvals.sign(vetoed, by=DAVE.model_copy(update={"groups": frozenset({"sre"})}), at=T0)


def test_cancel_only_by_requester_and_only_pending() -> None:
    with pytest.raises(NotAuthorized):
        approvals.cancel(make(), by=BOB, at=T0)
    cancelled = approvals.cancel(make(), by=ALICE, at=T0).request
    assert cancelled.status is RequestStatus.cancelled
    with pytest.raises(NotPending):
        approvals.cancel(cancelled, by=ALICE, at=T0)


def test_expire_pending_and_stale_approval() -> None:
    pending = make()
    assert not approvals.is_overdue(pending, T0 + timedelta(minutes=29))
    assert approvals.is_overdue(pending, T0 + timedelta(minutes=30))
    expired = approvals.expire(pending, at=T0 + timedelta(minutes=30)).request
    assert expired.status is RequestStatus.expired
    approved = make(status=RequestStatus.approved, approved_at=T0)
    assert approved.approval_fresh(T0 + timedelta(minutes=30))
    assert approvals.is_overdue(approved, T0 + timedelta(minutes=31))
    transition = approvals.expire(approved, at=T0 + timedelta(hours=3))
    assert transition.request.status is RequestStatus.expired
    assert "stale approval" in transition.events[0].title
    with pytest.raises(NotPending):
        approvals.expire(make(status=RequestStatus.succeeded), at=T0)


def test_execution_transitions() -> None:
    approved = make(status=RequestStatus.approved, approved_at=T0)
    executing = lifecycle.claimed(approved, worker="w1", at=T0).request
    assert executing.status is RequestStatus.executing
    with pytest.raises(NotPending):
        lifecycle.claimed(executing, worker="w2", at=T0)
    for status, event_type in [(RequestStatus.succeeded, EventType.executed), (RequestStatus.failed, EventType.failed),
                               (RequestStatus.blocked, EventType.blocked)]:
        outcome = Outcome(status=status, summary="x", duration_ms=12, finished_at=T0)
        finished = lifecycle.finished(executing, outcome=outcome)
        assert finished.request.status is status
        assert finished.events[0].type is event_type
        assert "12 ms" in finished.events[0].detail
    interrupted = lifecycle.interrupted(executing, at=T0).request
    assert interrupted.status is RequestStatus.interrupted
    with pytest.raises(NotPending):
        lifecycle.finished(approved, outcome=Outcome(status=RequestStatus.succeeded, summary="x", finished_at=T0))


@pytest.mark.parametrize("status", list(RequestStatus))
def test_terminal_states_accept_nothing(status: RequestStatus) -> None:
    if not status.terminal:
        return
    request = make(status=status)
    for transition in (approvals.sign, approvals.reject):
        with pytest.raises(NotPending):
            transition(request, by=BOB, at=T0)
    with pytest.raises(NotPending):
        approvals.cancel(request, by=ALICE, at=T0)
    with pytest.raises(NotPending):
        approvals.expire(request, at=T0)


def test_anyone_rule_still_refuses_the_requester() -> None:
    request = make(quorum=1, approvers=("*",))
    with pytest.raises(SelfApprovalForbidden):
        approvals.sign(request, by=ALICE, at=T0)
    assert approvals.sign(request, by=MALLORY, at=T0).request.status is RequestStatus.approved


def test_a_signature_may_carry_a_comment_kept_in_its_signed_event_outside_the_digest() -> None:
    request = make()
    plain = approvals.sign(request, by=BOB, at=T0, via="slack")
    commented = approvals.sign(request, by=BOB, at=T0, via="slack", comment="checked the dashboards")
    assert commented.request.signatures[0].comment == "checked the dashboards"
    assert plain.request.signatures[0].comment is None
    (signed,) = commented.events
    assert signed.type is EventType.signed and signed.detail == "via slack: checked the dashboards"
    # The digest stands for the operation signed, not for what the signer said about it.
    assert signed.digest == plain.events[0].digest == approvals.signed_digest(request)


def test_may_sign_refuses_as_signing_would_without_changing_anything() -> None:
    request = make()
    approvals.may_sign(request, by=BOB, at=T0)
    with pytest.raises(SelfApprovalForbidden):
        approvals.may_sign(request, by=ALICE, at=T0)
    with pytest.raises(NotAuthorized):
        approvals.may_sign(request, by=MALLORY, at=T0)
    once = approvals.sign(request, by=BOB, at=T0).request
    with pytest.raises(AlreadySigned):
        approvals.may_sign(once, by=BOB, at=T0)
