"""`store_transition`, the one way a request's change is stored, over the real database: the state, its
timeline events, the card, the thread note and the events other services hear, all in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.db.database import Database, SqlUnitOfWork
from core.app.messagebus import MessageBus, RequestCreated, RequestFinished
from core.app.transitions import Claim, store_transition
from core.chat.messages import MessageKind
from core.domain import approvals, lifecycle
from core.domain.approvals import ApprovalRequest, Outcome, Place, RequestStatus, Transition
from core.domain.events import EventType
from core.domain.operations import parse_operation
from core.domain.policy import Person, Policy, Risk, SignRule
from core.errors import ConcurrentUpdate
from core.ports import UnitOfWork

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
CONSOLE = Place(platform="console", channel="ops")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def created(self, uow: UnitOfWork, event: RequestCreated) -> None:
        self.events.append(("created", event.request.id, str(event.request.status)))

    def finished(self, uow: UnitOfWork, event: RequestFinished) -> None:
        self.events.append(("finished", event.request.id, str(event.request.status)))

    def bus(self) -> MessageBus:
        return MessageBus().on(RequestCreated, self.created).on(RequestFinished, self.finished)


def create(uow: SqlUnitOfWork, bus: MessageBus) -> ApprovalRequest:
    created = approvals.new_request(
        request_id=uow.requests.next_id(), operation=parse_operation("rollout restart deployment/api -n prod"),
        action="rollout restart deployment/api -n prod", requested_by=Person(name="alice"), via="console",
        at=T0, risk=Risk.medium, stated_risk=None, rule=SignRule(quorum=1, approvers=("sre",)),
        expire_after=timedelta(minutes=30), reason=None, incident_id=None, blast=None, proposal=None,
        places=(CONSOLE,),
    )
    return store_transition(uow, None, created, policy=Policy(), bus=bus)


def approve(request: ApprovalRequest) -> Transition:
    return Transition(request.model_copy(update={
        "status": RequestStatus.approved, "version": request.version + 1, "approved_at": T0,
    }), ())


def kinds(uow: SqlUnitOfWork) -> list[tuple[MessageKind, str]]:
    return [(m.kind, m.text) for m in uow.outbox.due(datetime.now(UTC) + timedelta(days=1), limit=100)]


async def test_a_request_lifecycle_is_stored_whole_and_told_to_the_bus(db: Database) -> None:
    heard = Heard()
    bus = heard.bus()
    request = await db.write(lambda uow: create(uow, bus))
    assert heard.events == [("created", request.id, "pending")]

    def run(uow: SqlUnitOfWork) -> ApprovalRequest:
        stored = uow.requests.get(request.id, lock=True)
        assert stored is not None
        approved = store_transition(uow, stored, approve(stored), bus=bus)
        executing = store_transition(uow, approved, lifecycle.claimed(approved, worker="w1", at=T0), bus=bus,
                                     claim=Claim(worker="w1", lease_until=T0 + timedelta(minutes=2)))
        outcome = Outcome(status=RequestStatus.failed, summary="the API server refused the real call",
                          reason="Invalid", finished_at=T0)
        return store_transition(uow, executing, lifecycle.finished(executing, outcome=outcome), bus=bus)

    done = await db.write(run)
    assert heard.events[1:] == [("finished", request.id, "failed")]
    assert (await db.read(lambda uow: uow.requests.get(request.id))) == done
    types = [e.type for e in await db.read(lambda uow: uow.timeline.for_request(request.id))]
    assert types == [EventType.requested, EventType.claimed, EventType.failed]
    messages = await db.read(kinds)
    assert [kind for kind, _ in messages] == [
        MessageKind.card,
        MessageKind.card_update, MessageKind.thread,  # approved, and its note
        MessageKind.card_update,                      # executing: no note
        MessageKind.card_update, MessageKind.thread,  # failed, and the result
    ]
    assert "approved" in messages[2][1]
    assert messages[5][1].startswith(f"❌ {request.id} failed: the API server refused the real call")


async def test_an_interrupted_request_is_not_finished_and_a_quiet_change_queues_nothing(db: Database) -> None:
    heard = Heard()
    bus = heard.bus()
    request = await db.write(lambda uow: create(uow, bus))

    def interrupt(uow: SqlUnitOfWork) -> None:
        stored = uow.requests.get(request.id, lock=True)
        assert stored is not None
        approved = store_transition(uow, stored, approve(stored), bus=bus, card=False, note="")
        executing = store_transition(uow, approved, lifecycle.claimed(approved, worker="w1", at=T0), bus=bus,
                                     card=False, claim=Claim(worker="w1", lease_until=T0))
        store_transition(uow, executing, lifecycle.interrupted(executing, at=T0), bus=bus)

    await db.write(interrupt)
    assert [e[0] for e in heard.events] == ["created"]
    messages = await db.read(kinds)
    assert [kind for kind, _ in messages] == [MessageKind.card, MessageKind.card_update, MessageKind.thread]
    assert "interrupted" in messages[2][1]


async def test_a_failing_handler_or_a_lost_claim_stores_nothing(db: Database) -> None:
    def refuse(uow: UnitOfWork, event: RequestCreated) -> None:
        raise LookupError("the incident is gone")

    with pytest.raises(LookupError):
        await db.write(lambda uow: create(uow, MessageBus().on(RequestCreated, refuse)))
    assert await db.read(lambda uow: (uow.requests.counts(), uow.outbox.backlog())) == ({}, 0)

    request = await db.write(lambda uow: create(uow, MessageBus()))
    approved = await db.write(lambda uow: store_transition(uow, request, approve(request)))
    # Another worker's claim won meanwhile: this one's compare-and-swap sees an older version.
    stale = approved.model_copy(update={"version": approved.version - 1})
    with pytest.raises(ConcurrentUpdate):
        await db.write(lambda uow: store_transition(
            uow, stale, lifecycle.claimed(stale, worker="w2", at=T0),
            claim=Claim(worker="w2", lease_until=T0 + timedelta(minutes=2))))
    stored = await db.read(lambda uow: uow.requests.get(request.id))
    assert stored is not None and stored.status is RequestStatus.approved
