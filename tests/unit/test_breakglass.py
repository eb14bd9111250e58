"""Break glass as pure transitions (issue 20, item 2): every refusal, the one-signature approval and its
events, countersignatures up to `review_quorum`, disputes, overdue once; `[breakglass]` in the policy file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.domain import approvals, breakglass
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.breakglass_review import BreakglassRules, ReviewStatus
from core.domain.events import EventType, TimelineEvent
from core.domain.integrity import binding_problem
from core.domain.operations import parse_operation
from core.domain.policy import Person, Risk, SignRule
from core.domain.policy_file import PolicyFileError, parse_policy
from core.errors import NotAuthorized, NotPending

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
ALICE = Person(name="alice", groups=frozenset({"sre"}))
BOB = Person(name="bob", groups=frozenset({"sre"}))
CAROL = Person(name="carol", groups=frozenset({"leads"}))
DAVE = Person(name="dave", groups=frozenset({"leads"}))
MALLORY = Person(name="mallory", groups=frozenset({"dev"}))
RULES = BreakglassRules(who=("sre", "oncall.primary"), after=timedelta(minutes=5), reviewers=("leads",),
                        review_quorum=2)
LATER = T0 + timedelta(minutes=6)


def pending() -> ApprovalRequest:
    return approvals.new_request(
        request_id="R-1", operation=parse_operation("rollout restart deployment/api -n prod"),
        action="rollout restart deployment/api -n prod", requested_by=MALLORY, via="slack", at=T0,
        risk=Risk.high, stated_risk=None, rule=SignRule(quorum=3, approvers=("sre", "leads")),
        expire_after=timedelta(minutes=30), reason=None, incident_id=None, blast=None, proposal=None, places=(),
    ).request


def broken(by: Person = ALICE) -> ApprovalRequest:
    return breakglass.break_glass(pending(), by=by, reason="checkout down", at=LATER, rules=RULES).request


def test_break_glass_approves_on_one_signature_with_its_record_and_events() -> None:
    changed = breakglass.break_glass(pending(), by=ALICE, reason=" checkout down ", at=LATER, rules=RULES,
                                     could_sign=("alice", "bob", "carol"))
    request = changed.request
    assert request.status is RequestStatus.approved and request.approved_at == LATER
    assert request.signers == ("alice",) and approvals.quorum_problem(request) is None
    record = request.breakglass
    assert record is not None and record.by == "alice" and record.reason == "checkout down"
    assert record.review_due == LATER + timedelta(hours=24) and record.status is ReviewStatus.open
    assert record.could_sign == ("bob", "carol")
    assert [e.type for e in changed.events] == [EventType.signed, EventType.breakglass, EventType.approved]
    assert changed.events[1].title == "🚨 break glass by alice: checkout down"


def test_the_signature_binds_like_any_other() -> None:
    created = pending()
    first = approvals.new_request(
        request_id="R-1", operation=created.operation, action=created.action, requested_by=MALLORY, via="slack",
        at=T0, risk=Risk.high, stated_risk=None, rule=SignRule(quorum=3, approvers=("sre", "leads")),
        expire_after=timedelta(minutes=30), reason=None, incident_id=None, blast=None, proposal=None, places=(),
    )
    changed = breakglass.break_glass(created, by=ALICE, reason="x", at=LATER, rules=RULES)
    events = [TimelineEvent(seq=n, prev_hash="", hash="", **e.model_dump())
              for n, e in enumerate((*first.events, *changed.events), start=1)]
    assert binding_problem(changed.request, events) is None


def test_schedule_in_who_admits_the_person_on_call() -> None:
    changed = breakglass.break_glass(pending(), by=CAROL, reason="x", at=LATER, rules=RULES, on_call=["carol"])
    assert changed.request.status is RequestStatus.approved


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"reason": ""}, breakglass.BreakglassNoReason, "needs a reason"),
    ({"reason": None}, breakglass.BreakglassNoReason, "needs a reason"),
    ({"by": MALLORY}, breakglass.BreakglassNotAllowed, "Only sre, oncall.primary may break glass"),
    ({"at": T0 + timedelta(minutes=2)}, breakglass.BreakglassTooEarly, "at 03:05:00 UTC"),
    ({"rules": None}, breakglass.BreakglassDisabled, "no [breakglass] section"),
    ({"open_review": "R-7"}, breakglass.BreakglassReviewOpen, "Your break glass on R-7 awaits review"),
])
def test_every_refusal_is_a_sentence(kwargs: dict[str, object], error: type[Exception], words: str) -> None:
    call: dict[str, object] = {"by": ALICE, "reason": "checkout down", "at": LATER, "rules": RULES, **kwargs}
    with pytest.raises(error) as caught:
        breakglass.break_glass(pending(), **call)  # type: ignore[arg-type]
    assert words in str(caught.value)


def test_not_pending_is_refused() -> None:
    with pytest.raises(NotPending, match="only on a pending request"):
        breakglass.break_glass(broken(), by=BOB, reason="again", at=LATER, rules=RULES)


def test_review_quorum_countersignatures_close_the_review() -> None:
    request = breakglass.countersign(broken(), by=CAROL, at=LATER).request
    assert request.breakglass is not None and request.breakglass.status is ReviewStatus.open
    with pytest.raises(breakglass.ReviewRefused, match="already countersigned"):
        breakglass.countersign(request, by=CAROL, at=LATER)
    closed = breakglass.countersign(request, by=DAVE, at=LATER)
    assert closed.request.breakglass is not None and closed.request.breakglass.cleared
    assert closed.request.breakglass.countersigned_by == ("carol", "dave")
    assert closed.events[0].type is EventType.countersigned


def test_only_reviewers_review_and_never_their_own() -> None:
    with pytest.raises(NotAuthorized, match="Only members of leads"):
        breakglass.countersign(broken(), by=BOB, at=LATER)
    lead_breaks = breakglass.break_glass(pending(), by=CAROL, reason="x", at=LATER, rules=RULES,
                                         on_call=["carol"]).request
    with pytest.raises(breakglass.ReviewRefused, match="cannot review it yourself"):
        breakglass.countersign(lead_breaks, by=CAROL, at=LATER)
    with pytest.raises(breakglass.ReviewRefused, match="nothing to review"):
        breakglass.countersign(pending(), by=CAROL, at=LATER)


def test_a_dispute_records_its_reason() -> None:
    with pytest.raises(breakglass.ReviewRefused, match="needs a reason"):
        breakglass.dispute(broken(), by=CAROL, reason=" ", at=LATER)
    changed = breakglass.dispute(broken(), by=CAROL, reason="could have waited", at=LATER)
    record = changed.request.breakglass
    assert record is not None and record.status is ReviewStatus.disputed and record.disputed_by == ("carol",)
    assert record.disputes[0].reason == "could have waited" and changed.events[0].type is EventType.disputed


def test_overdue_once_after_review_within() -> None:
    request = broken()
    with pytest.raises(breakglass.ReviewRefused):
        breakglass.overdue(request, at=LATER + timedelta(hours=23))
    late = breakglass.overdue(request, at=LATER + timedelta(hours=25)).request
    assert late.breakglass is not None and late.breakglass.status is ReviewStatus.overdue
    with pytest.raises(breakglass.ReviewRefused):
        breakglass.overdue(late, at=LATER + timedelta(hours=26))


TEAM = """
[people.alice]
groups = ["sre"]
[people.carol]
groups = ["leads"]
[risk.critical]
quorum = 1
approvers = ["leads"]
"""


def test_policy_section_defaults_and_unknown_keys() -> None:
    assert parse_policy(TEAM, "p.toml").breakglass is None
    rules = parse_policy(TEAM + '[breakglass]\nwho = ["sre"]\n', "p.toml").breakglass
    assert rules == BreakglassRules(who=("sre",), after=timedelta(minutes=5), review_within=timedelta(hours=24),
                                    reviewers=("leads",), review_quorum=1)
    with pytest.raises(PolicyFileError, match=r"line 11 \(breakglass.reviewer\): unknown key"):
        parse_policy(TEAM + '[breakglass]\nwho = ["sre"]\nreviewer = ["x"]\n', "p.toml")
    with pytest.raises(PolicyFileError, match="review_quorum"):
        parse_policy(TEAM + '[breakglass]\nwho = ["sre"]\nreview_quorum = 0\n', "p.toml")
    with pytest.raises(PolicyFileError, match=r"breakglass\.who"):
        parse_policy(TEAM + '[breakglass]\nafter = "5m"\n', "p.toml")
