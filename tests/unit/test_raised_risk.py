"""A raised risk counts only the signatures its new rule admits (issue: hardening II, defect 2).

Repro: medium = 1 of sre, high = 2 of leads. bob (sre, not a lead) signed at medium; the floor rose to high
before execution. bob's signature must no longer count, the card must say so, and carol (a lead) alone must not
make it run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.chat.cards import request_card, risk_raised_text, signers_text, status_text
from core.domain import approvals
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.events import EventType
from core.domain.operations import parse_operation
from core.domain.policy import Person, Risk, SignRule

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ALICE = Person(name="alice", groups=frozenset({"sre"}))
BOB = Person(name="bob", groups=frozenset({"sre"}))
CAROL = Person(name="carol", groups=frozenset({"sre", "leads"}))
DAVE = Person(name="dave", groups=frozenset({"leads"}))
PEOPLE = {p.name: p for p in (ALICE, BOB, CAROL, DAVE)}
MEDIUM = SignRule(quorum=1, approvers=("sre",))
HIGH = SignRule(quorum=2, approvers=("leads",))
CRITICAL = SignRule(quorum=2, approvers=("sre", "leads"))


def approved_at_medium(*signers: Person, quorum: int = 1) -> ApprovalRequest:
    request = approvals.new_request(
        request_id="R-1", operation=parse_operation("scale deployment/api --replicas=2 -n prod"),
        action="scale deployment/api --replicas=2 -n prod", requested_by=ALICE, via="slack", at=T0,
        risk=Risk.medium, stated_risk=None, rule=SignRule(quorum=quorum, approvers=("sre",)),
        expire_after=timedelta(minutes=30), reason=None, incident_id=None, blast=None, proposal=None, places=(),
    ).request
    for index, signer in enumerate(signers):
        request = approvals.sign(request, by=signer, at=T0 + timedelta(seconds=index + 1), via="slack").request
    assert request.status is RequestStatus.approved
    return request


def raised(request: ApprovalRequest, rule: SignRule = HIGH, risk: Risk = Risk.high,
           why: str = "the cluster now has 10 replica(s) for deployment/api") -> approvals.Transition:
    return approvals.raise_risk(request, risk=risk, rule=rule, at=T0 + timedelta(minutes=1), why=why,
                                people=PEOPLE)


@pytest.mark.parametrize("why", ["the cluster now has 10 replica(s) for deployment/api",
                                 "the cluster could not be read"])
def test_a_signature_the_raised_rule_does_not_admit_no_longer_counts(why: str) -> None:
    back = raised(approved_at_medium(BOB), why=why)
    request = back.request
    assert request.status is RequestStatus.pending
    assert request.signers == ("bob",)  # still on record
    assert request.signed == 0  # but it does not count towards 2 of leads
    assert request.uncounted == ("bob",)
    (event,) = back.events
    assert event.type is EventType.risk_raised
    assert "0 given" in event.detail and "bob" in event.detail and "no longer counts" in event.detail

    one_lead = approvals.sign(request, by=CAROL, at=T0 + timedelta(minutes=2), via="slack")
    assert one_lead.request.status is RequestStatus.pending, "one lead must not reach a quorum of 2 leads"
    assert one_lead.request.signed == 1
    assert [e.title for e in one_lead.events] == ["carol signed (1/2)"]

    two_leads = approvals.sign(one_lead.request, by=DAVE, at=T0 + timedelta(minutes=3), via="slack")
    assert two_leads.request.status is RequestStatus.approved
    assert two_leads.request.signed == 2
    assert two_leads.events[-1].title == "quorum reached: approved by carol, dave"
    assert approvals.quorum_problem(two_leads.request) is None


def test_signatures_the_raised_rule_admits_keep_counting() -> None:
    request = raised(approved_at_medium(CAROL)).request
    assert request.status is RequestStatus.pending
    assert request.signed == 1 and request.uncounted == ()
    done = approvals.sign(request, by=DAVE, at=T0 + timedelta(minutes=2)).request
    assert done.status is RequestStatus.approved


def test_a_second_raise_weighs_every_signature_again() -> None:
    high = raised(approved_at_medium(BOB)).request
    assert high.uncounted == ("bob",)
    high = approvals.sign(high, by=CAROL, at=T0 + timedelta(minutes=2)).request
    high = approvals.sign(high, by=DAVE, at=T0 + timedelta(minutes=3)).request
    assert high.status is RequestStatus.approved
    # critical admits sre and leads: bob counts again, with carol and dave.
    critical = raised(high, rule=CRITICAL, risk=Risk.critical, why="the cluster could not be read").request
    assert critical.uncounted == () and critical.signed == 3


def test_the_card_and_the_thread_say_which_signatures_no_longer_count() -> None:
    request = raised(approved_at_medium(BOB)).request
    shown = signers_text(request)
    assert "bob" in shown and "no longer counts" in shown
    card = request_card(request, T0 + timedelta(minutes=1))
    assert card.progress is not None and (card.progress.current, card.progress.required) == (0, 2)
    assert any("no longer counts" in f.value for f in card.fields if f.label == "Signed by")
    text = risk_raised_text(request, "the cluster now has 10 replica(s) for deployment/api")
    assert "0/2" in text and "bob" in text and "no longer counts" in text
    assert "still count" not in text
    assert "0/2" in status_text(request, T0 + timedelta(minutes=1))


def test_an_uncounted_signature_is_part_of_what_later_signers_sign() -> None:
    request = raised(approved_at_medium(BOB)).request
    # Someone editing the row to count bob again changes the digest the raise recorded.
    edited = request.model_copy(update={"uncounted": ()})
    assert approvals.signed_digest(edited) != approvals.signed_digest(request)
    assert approvals.signed_digest(edited) == approvals.signed_digest(
        request.model_copy(update={"uncounted": ()}))


def test_execution_refuses_an_approval_short_of_its_counted_quorum() -> None:
    request = raised(approved_at_medium(BOB)).request
    with_carol = approvals.sign(request, by=CAROL, at=T0 + timedelta(minutes=2)).request
    # What the old code stored: approved on bob + carol although bob no longer counts.
    forged = with_carol.model_copy(update={"status": RequestStatus.approved, "approved_at": T0})
    problem = approvals.quorum_problem(forged)
    assert problem is not None and "1/2" in problem and "bob" in problem
    assert approvals.quorum_problem(approved_at_medium(BOB)) is None
