"""Before an approved request runs: is it its turn on its target, and is the target still what was signed?

- One operation per target at a time, in the order approved: while another request on the same target is
  executing or verifying, or was approved before it, the request waits, and its card says for whom. The queue
  is the database (`RequestRepository.ahead_of`, and the claim refuses too), so it holds across replicas.
- Then the target is read again; when what the request pinned (core/domain/pinning.py) changed, the request
  ends `stale` and nothing runs. Its card says what changed and offers to request again.
"""

from __future__ import annotations

from typing import NamedTuple

import structlog

from core.app.messagebus import MessageBus
from core.app.transitions import store_transition
from core.chat.stale_texts import stale_note, waiting_note
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.cluster import ClusterError, TargetFacts
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
                 bus: MessageBus | None = None) -> None:
        self._store = store
        self._cluster = cluster
        self._clock = clock
        self._policy = policy
        self._bus = bus

    async def admit(self, request_id: str, listed: ApprovalRequest | None = None) -> Admission:
        request = listed or await self._store.read(lambda uow: uow.requests.get(request_id))
        if request is None or request.status is not RequestStatus.approved:
            return Admission(go=True)  # the claim decides
        if not await self._its_turn(request):
            return Admission(go=False)
        if request.pin is None:
            return Admission(go=True)
        try:
            facts = await self._cluster.inspect(request.operation, fresh=True)
        except ClusterError as exc:  # the dry run and the real call meet the same trouble, and say so
            log.warning("execution.pin_unreadable", request_id=request.id, error=exc.message)
            return Admission(go=True)
        if not facts.exists:
            return Admission(go=True, facts=facts)  # blocked by the dry run: nothing to change
        what = drift(request.pin, pin_of(facts.observed), observed=facts.observed)
        if what is None:
            return Admission(go=True, facts=facts)
        await self._go_stale(request, what)
        return Admission(go=False)

    async def _its_turn(self, request: ApprovalRequest) -> bool:
        now = self._clock.now()

        def look(uow: UnitOfWork) -> bool:
            ahead = uow.requests.ahead_of(request)
            if ahead is None:
                return True
            current = uow.requests.get(request.id, lock=True)
            if current is not None and current.status is RequestStatus.approved and current.waiting_for != ahead:
                changed = waiting_transition(current, at=now, behind=ahead)
                store_transition(uow, current, changed, policy=self._policy, bus=self._bus,
                                 note=waiting_note(changed.request, ahead))
            return False

        turn = await self._store.write(look)
        if not turn:
            log.info("execution.waiting", request_id=request.id)
        return turn

    async def _go_stale(self, request: ApprovalRequest, what: str) -> None:
        now = self._clock.now()

        def stale(uow: UnitOfWork) -> bool:
            current = uow.requests.get(request.id, lock=True)
            if current is None or current.status not in (RequestStatus.pending, RequestStatus.approved):
                return False
            changed = went_stale(current, at=now, what=what)
            store_transition(uow, current, changed, policy=self._policy, bus=self._bus,
                             note=stale_note(changed.request))
            return True

        if await self._store.write(stale):
            log.warning("execution.stale", request_id=request.id, changed=what)


def pinned_operation(request: ApprovalRequest) -> RollbackOp | None:
    """A rollback goes to exactly the ReplicaSet its card showed (None: run the operation as stored)."""
    op = request.operation
    if isinstance(op, RollbackOp) and request.pin is not None and request.pin.revision_name:
        return op.model_copy(update={"to_replica_set": request.pin.revision_name})
    return None
