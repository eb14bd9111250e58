"""Before an approved request runs: is it its turn on its target, and is the target still what was signed?

- One operation per target at a time, in the order approved: while another request on the same target is
  executing or verifying, or was approved before it, the request waits, and its card says for whom. The queue
  is the database: the claim's transaction finds who is ahead (`RequestRepository.ahead_of`, and marks the
  request waiting), and its compare-and-swap refuses too, so it holds across replicas and restarts. A request
  that waited is looked up here first, so it reads nothing of the cluster until its turn.
- The target is read again, alone (the pin and the risk floor need nothing of what depends on it); when what
  the request pinned (core/domain/pinning.py) changed, the request ends `stale` and nothing runs. Its card
  says what changed and offers to request again. A request whose stored form is not what was signed is left
  to the claim, which blocks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import structlog

from core.app.clusters import target_facts
from core.app.messagebus import MessageBus
from core.app.transitions import store_transition
from core.chat.stale_texts import stale_note, waiting_note
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.cluster import ClusterError, TargetFacts
from core.domain.integrity import request_problem
from core.domain.operations import RollbackOp
from core.domain.pinning import drift, pin_of
from core.domain.policy import Policy
from core.domain.staleness import waiting as waiting_transition
from core.domain.staleness import went_stale
from core.ports import Clock, Cluster, Store, UnitOfWork

log = structlog.get_logger(__name__)


class Admission(NamedTuple):
    go: bool  # False: not now (waiting its turn, stale, or no longer approved)
    facts: TargetFacts | None = None  # the target as just read (the risk floor uses them too)


class TargetGate:
    def __init__(self, *, store: Store, cluster: Cluster, clock: Clock, policy: Policy | None = None,
                 bus: MessageBus | None = None, audit_key: bytes | None = None) -> None:
        self._store = store
        self._audit_key = audit_key
        self._cluster = cluster
        self._clock = clock
        self._policy = policy
        self._bus = bus

    async def admit(self, request_id: str, listed: ApprovalRequest | None = None) -> Admission:
        request = listed or await self._store.read(lambda uow: uow.requests.get(request_id), quick=True)
        if request is None or request.status is not RequestStatus.approved:
            return Admission(go=True)  # the claim decides
        if request.waiting_for is not None:
            # It waited last time: still behind someone? (The claim checks again, and says so on its card.)
            ahead = await self._store.read(lambda uow: uow.requests.ahead_of(request), quick=True)
            if ahead is not None:
                return Admission(go=False)
        if request.pin is None:
            return Admission(go=True)
        try:
            facts = await target_facts(self._cluster, request.operation)
        except ClusterError as exc:  # the dry run and the real call meet the same trouble, and say so
            log.warning("execution.pin_unreadable", request_id=request.id, error=exc.message)
            return Admission(go=True)
        if not facts.exists:
            return Admission(go=True, facts=facts)  # blocked by the dry run: nothing to change
        what = drift(request.pin, pin_of(facts.observed), observed=facts.observed)
        if what is None:
            return Admission(go=True, facts=facts)
        # Not stale when what is stored is not what was signed: the claim blocks it and says so.
        return Admission(go=not await self._go_stale(request, what), facts=facts)

    async def _go_stale(self, request: ApprovalRequest, what: str) -> bool:
        now = self._clock.now()

        def stale(uow: UnitOfWork) -> bool:
            current = uow.requests.get(request.id, lock=True)
            if current is None or current.status not in (RequestStatus.pending, RequestStatus.approved):
                return True  # settled meanwhile: nothing to run here
            if request_problem(current, uow.timeline, self._audit_key) is not None:
                return False
            changed = went_stale(current, at=now, what=what)
            store_transition(uow, current, changed, policy=self._policy, bus=self._bus,
                             note=stale_note(changed.request))
            log.warning("execution.stale", request_id=request.id, changed=what)
            return True

        return await self._store.write(stale, quick=True)


def mark_waiting(uow: UnitOfWork, request: ApprovalRequest, ahead: str, *, at: datetime, policy: Policy | None,
                 bus: MessageBus | None) -> None:
    """Inside the claim's transaction: `request` is not to run yet; its card says for whom it waits (once)."""
    log.info("execution.waiting", request_id=request.id, behind=ahead)
    if request.waiting_for == ahead:
        return
    changed = waiting_transition(request, at=at, behind=ahead)
    store_transition(uow, request, changed, policy=policy, bus=bus, note=waiting_note(changed.request, ahead))


def pinned_operation(request: ApprovalRequest) -> RollbackOp | None:
    """A rollback goes to exactly the ReplicaSet its card showed (None: run the operation as stored)."""
    op = request.operation
    if isinstance(op, RollbackOp) and request.pin is not None and request.pin.revision_name:
        return op.model_copy(update={"to_replica_set": request.pin.revision_name})
    return None
