"""The typed confirmation's pure check: only the target's name (or its kind/name) counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.domain import approvals
from core.domain.operations import parse_operation
from core.domain.policy import Person, Risk, SignRule
from core.errors import ConfirmationMismatch, ConfirmationNeeded

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def _request(action: str, *, confirm: bool) -> approvals.ApprovalRequest:
    return approvals.new_request(
        request_id="R-3", operation=parse_operation(action), action=action, requested_by=Person(name="alice"),
        via="console", at=NOW, risk=Risk.critical, stated_risk=None,
        rule=SignRule(quorum=2, confirm=confirm), expire_after=timedelta(minutes=30), reason=None,
        incident_id=None, blast=None, proposal=None, places=(),
    ).request


@pytest.mark.parametrize(("action", "typed"), [
    ("rollout restart deployment/api -n prod", "api"),
    ("rollout restart deployment/api -n prod", "deployment/api"),
    ("drain node-1", "  node-1 "),
    ("delete pod web-7d9f -n prod", "web-7d9f"),
])
def test_the_targets_name_signs(action: str, typed: str) -> None:
    signed = approvals.sign(_request(action, confirm=True), by=Person(name="bob"), at=NOW, confirmation=typed)
    assert signed.request.signed == 1


@pytest.mark.parametrize("typed", ["API", "ap", "api-2", "prod/api", ""])
def test_anything_else_is_refused_saying_what_to_type(typed: str) -> None:
    with pytest.raises(ConfirmationMismatch, match=r"not the target of R-3: type api \(deployment/api\)"):
        approvals.sign(_request("rollout restart deployment/api -n prod", confirm=True), by=Person(name="bob"),
                       at=NOW, confirmation=typed)


def test_a_plain_approve_is_asked_for_the_name_and_the_refusals_of_signing_come_first() -> None:
    request = _request("rollout restart deployment/api -n prod", confirm=True)
    with pytest.raises(ConfirmationNeeded) as asked:
        approvals.sign(request, by=Person(name="bob"), at=NOW)
    assert asked.value.expected == "api" and "`approve R-3 confirm=api`" in asked.value.message
    # the requester is refused as such, before any form would open
    with pytest.raises(approvals.SelfApprovalForbidden):
        approvals.sign(request, by=Person(name="alice"), at=NOW, confirmation="api")


def test_a_level_without_confirm_ignores_the_name() -> None:
    request = _request("rollout restart deployment/api -n prod", confirm=False)
    assert approvals.sign(request, by=Person(name="bob"), at=NOW).request.signed == 1
