"""Break glass reviewers named by schedule (`oncall.<name>`): the person on call now reviews, nobody else from
the schedule; the refusal says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.domain import approvals, breakglass
from core.domain.approvals import ApprovalRequest
from core.domain.breakglass_review import BreakglassRules, ReviewStatus
from core.domain.operations import parse_operation
from core.domain.policy import Person, Risk, SignRule
from core.errors import NotAuthorized

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=6)
ALICE = Person(name="alice", groups=frozenset({"sre"}))
BOB = Person(name="bob", groups=frozenset({"sre"}))
CAROL = Person(name="carol", groups=frozenset({"leads"}))


def pending() -> ApprovalRequest:
    return approvals.new_request(
        request_id="R-1", operation=parse_operation("rollout restart deployment/api -n prod"),
        action="rollout restart deployment/api -n prod", requested_by=Person(name="mallory"), via="slack", at=T0,
        risk=Risk.high, stated_risk=None, rule=SignRule(quorum=3, approvers=("sre",)),
        expire_after=timedelta(minutes=30), reason=None, incident_id=None, blast=None, proposal=None, places=(),
    ).request

RULES = BreakglassRules(who=("sre",), after=timedelta(minutes=5), reviewers=("oncall.secondary", "leads"))


def test_the_person_on_call_for_a_reviewer_schedule_countersigns() -> None:
    request = breakglass.break_glass(pending(), by=ALICE, reason="down", at=LATER, rules=RULES).request
    with pytest.raises(NotAuthorized, match=r"Only members of leads or the person on call for oncall\.secondary"):
        breakglass.countersign(request, by=BOB, at=LATER)  # bob is not on call now
    signed = breakglass.countersign(request, by=BOB, at=LATER, on_call=("bob",)).request
    assert signed.breakglass is not None and signed.breakglass.status is ReviewStatus.countersigned
    # A lead still reviews by group; the breaker never, even when on call.
    assert breakglass.countersign(request, by=CAROL, at=LATER).request.breakglass is not None
    with pytest.raises(breakglass.ReviewRefused, match="cannot review it yourself"):
        breakglass.dispute(request, by=ALICE, reason="x", at=LATER, on_call=("alice",))
