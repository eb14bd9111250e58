"""Start-up recovery and the periodic sweep: nothing stays pending, approved or executing forever."""

from __future__ import annotations

from datetime import datetime, timedelta

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


# Rate counters only matter for a minute; an hour is ample.
RATE_EVENTS_KEPT = timedelta(hours=1)
# Pruning is cheap but not free: the sweep runs every few seconds, pruning at most this often.
PRUNE_EVERY = timedelta(minutes=10)
DEFAULT_KEEP = timedelta(days=30)


class Maintenance:
    def __init__(self, *, store: Store, clock: Clock, signals: Signals,
                 keep: timedelta = DEFAULT_KEEP) -> None:
        self._store = store
        self._clock = clock
        self._signals = signals
        self._keep = keep
        self._pruned_at: datetime | None = None

    async def recover(self, *, sole_worker: bool) -> dict[str, int]:
        """On start: mid-flight executions become interrupted; stale approvals expire.

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
        log.info("recovery.done", **counts)
        return counts

    async def prune(self) -> dict[str, int]:
        """Delete bookkeeping past its retention. Timeline events are never pruned."""
        now = self._clock.now()
        self._pruned_at = now

        def prune(uow: UnitOfWork) -> dict[str, int]:
            return {"outbox": uow.outbox.prune(now - self._keep),
                    "rate_events": uow.rate_events.prune(now - RATE_EVENTS_KEPT)}

        counts = await self._store.write(prune)
        if any(counts.values()):
            log.info("retention.pruned", **counts)
        return counts

    async def sweep(self) -> dict[str, int]:
        now = self._clock.now()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            await self.prune()
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
            elif request.status is RequestStatus.executing and not uow.requests.lease_lapsed(request_id, now):
                return None  # renewed since the sweep listed it: the worker is alive
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
