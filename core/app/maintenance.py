"""Start-up recovery and the periodic sweep: nothing stays pending, approved or executing forever."""

from __future__ import annotations

from datetime import datetime

import structlog

from core.app.service import store_transition
from core.app.signals import Signals
from core.domain import approvals
from core.domain.approvals import ApprovalRequest, RequestStatus, Transition
from core.ports import Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)


def _overdue_transition(request: ApprovalRequest, now: datetime) -> Transition | None:
    """What an overdue request becomes. Executing rows only reach here once their lease lapsed."""
    if request.status is RequestStatus.executing:
        return approvals.interrupted(request, at=now)
    if approvals.is_overdue(request, now):
        return approvals.expire(request, at=now)
    return None


class Maintenance:
    def __init__(self, *, store: Store, clock: Clock, signals: Signals) -> None:
        self._store = store
        self._clock = clock
        self._signals = signals

    async def recover(self, *, sole_worker: bool) -> dict[str, int]:
        """On start: mid-flight executions become interrupted; stale approvals expire; verifications resume.

        `sole_worker` says no other process can be executing (a SQLite database serves one
        process), so every `executing` row is an orphan; otherwise only lapsed leases are.
        Fresh approvals are left to the execution worker, which runs them next.
        """
        orphans: list[ApprovalRequest] = []
        if sole_worker:
            orphans = await self._store.read(
                lambda uow: uow.requests.with_status([RequestStatus.executing], limit=10_000))
        interrupted = 0
        for request in orphans:
            if await self._settle(request.id, force_interrupt=True) == RequestStatus.interrupted:
                interrupted += 1
        counts = await self.sweep()
        counts[RequestStatus.interrupted.value] = counts.get(RequestStatus.interrupted.value, 0) + interrupted
        # Verifying requests are left as they are: looking is read-only, so the verification worker resumes them.
        resumed = await self._store.read(
            lambda uow: uow.requests.with_status([RequestStatus.verifying], limit=10_000))
        log.info("recovery.done", verifying_resumed=len(resumed), **counts)
        return counts

    async def sweep(self) -> dict[str, int]:
        now = self._clock.now()
        overdue = await self._store.read(lambda uow: uow.requests.overdue_ids(now))
        counts: dict[str, int] = {"expired": 0, "interrupted": 0}
        for request_id in overdue:
            status = await self._settle(request_id)
            if status is not None:
                counts[status.value] += 1
        if any(counts.values()):
            log.info("sweep.done", **counts)
        return counts

    async def _settle(self, request_id: str, *, force_interrupt: bool = False) -> RequestStatus | None:
        now = self._clock.now()

        def settle(uow: UnitOfWork) -> RequestStatus | None:
            request = uow.requests.get(request_id, lock=True)
            if request is None:
                return None
            if force_interrupt:
                executing = request.status is RequestStatus.executing
                changed = approvals.interrupted(request, at=now) if executing else None
            else:
                changed = _overdue_transition(request, now)
            if changed is None:
                return None
            store_transition(uow, request, changed)
            return changed.request.status

        status = await self._store.write(settle)
        if status is not None:
            self._signals.outbox.set()
            log.info("request.settled", request_id=request_id, status=str(status))
        return status
