"""The typed events between services: each event reaches the handlers of its own type, in registration order,
and a change tells the bus what happened (a new request; a running operation that ended)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from core.app.messagebus import MessageBus, RequestCreated, RequestFinished
from core.app.transitions import what_happened
from core.domain import approvals
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.operations import parse_operation
from core.domain.policy import Person, Risk, SignRule
from core.ports import UnitOfWork

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
UOW = cast(UnitOfWork, object())


def request(status: RequestStatus = RequestStatus.pending) -> ApprovalRequest:
    created = approvals.new_request(
        request_id="R-1", operation=parse_operation("rollout restart deployment/api -n prod"),
        action="rollout restart deployment/api -n prod", requested_by=Person(name="alice"), via="console", at=T0,
        risk=Risk.medium, stated_risk=None, rule=SignRule(quorum=1, approvers=("sre",)),
        expire_after=timedelta(minutes=30), reason=None, incident_id=None, blast=None, proposal=None, places=(),
    ).request
    return created.model_copy(update={"status": status})


def test_each_event_reaches_the_handlers_of_its_type_in_order() -> None:
    heard: list[str] = []
    bus = (MessageBus()
           .on(RequestCreated, lambda uow, e: heard.append(f"a:{e.request.id}"))
           .on(RequestFinished, lambda uow, e: heard.append(f"f:{e.request.status}"))
           .on(RequestCreated, lambda uow, e: heard.append(f"b:{e.request.id}")))
    bus.publish(UOW, RequestCreated(request()))
    assert heard == ["a:R-1", "b:R-1"]
    bus.publish(UOW, RequestFinished(request(RequestStatus.failed)))
    assert heard[2:] == ["f:failed"]
    assert len(bus.handlers(RequestCreated)) == 2 and len(bus.handlers(RequestFinished)) == 1


def test_a_handler_that_raises_stops_the_publisher() -> None:
    def broken(uow: Any, event: RequestCreated) -> None:
        raise LookupError("gone")

    with pytest.raises(LookupError):
        MessageBus().on(RequestCreated, broken).publish(UOW, RequestCreated(request()))


@pytest.mark.parametrize(("before", "after", "told"), [
    (None, RequestStatus.pending, RequestCreated),
    (RequestStatus.executing, RequestStatus.failed, RequestFinished),
    (RequestStatus.executing, RequestStatus.blocked, RequestFinished),
    (RequestStatus.verifying, RequestStatus.succeeded, RequestFinished),
    (RequestStatus.verifying, RequestStatus.failed, RequestFinished),
    (RequestStatus.executing, RequestStatus.verifying, None),
    (RequestStatus.executing, RequestStatus.interrupted, None),  # the outcome is unknown
    (RequestStatus.pending, RequestStatus.approved, None),
    (RequestStatus.pending, RequestStatus.expired, None),
    (RequestStatus.approved, RequestStatus.executing, None),
])
def test_what_a_change_tells_the_bus(before: RequestStatus | None, after: RequestStatus, told: type | None) -> None:
    events = what_happened(request(before) if before is not None else None, request(after))
    assert [type(e) for e in events] == ([told] if told is not None else [])
