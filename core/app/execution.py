"""Exactly-once execution: claim → dry run → real call → record → report.

The claim is a compare-and-swap in the database, so whichever worker (or replica) wins it
is the only one that ever calls the cluster for that request. Anything found mid-flight
after a restart is reported as interrupted and never re-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog

from core.app.clusters import label_of, target_facts
from core.app.messagebus import MessageBus
from core.app.metrics import Metrics
from core.app.notify import thread_replies
from core.app.silences import SilenceKeeper
from core.app.target_gate import TargetGate, mark_waiting, pinned_operation
from core.app.transitions import Claim, store_transition
from core.app.verification import VerificationService
from core.chat.cards import risk_raised_text
from core.domain import approvals, lifecycle
from core.domain.approvals import ApprovalRequest, Outcome, RequestStatus
from core.domain.cluster import ClusterError, ClusterResult, ClusterUnavailable, TargetFacts, TargetMissing
from core.domain.events import EventType, NewEvent
from core.domain.integrity import request_problem
from core.domain.policy import Policy, Risk
from core.domain.stamp import stamp_of
from core.ports import Clock, Cluster, Store, UnitOfWork

log = structlog.get_logger(__name__)


class _LeaseLost(Exception):
    """This worker no longer holds the request's lease: the real call must not go out."""


class ExecutionService:
    def __init__(
        self, *, store: Store, cluster: Cluster, clock: Clock, verification: VerificationService,
        lease: timedelta = timedelta(minutes=2), worker_id: str | None = None, metrics: Metrics | None = None,
        concurrency: int = 8, audit_key: bytes | None = None, policy: Policy | None = None,
        bus: MessageBus | None = None, silences: SilenceKeeper | None = None,
    ) -> None:
        self._store = store
        self._policy = policy
        self._audit_key = audit_key
        self._concurrency = concurrency
        self._metrics = metrics or Metrics()
        self._cluster = cluster
        self._clock = clock
        self._lease = lease
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        # Other services (incidents, playbooks) hear of an outcome inside the transaction that records it.
        self._bus = bus
        # An accepted call is followed to its effect; the final outcome is recorded there.
        self._verification = verification
        # [alertmanager] silence: the target's alerts hushed from the start until the request ends.
        self._silences = silences
        # Its turn on its target, and the target still as signed (core/app/target_gate.py).
        self.gate = TargetGate(store=store, cluster=cluster, clock=clock, policy=policy, bus=bus, audit_key=audit_key)

    async def run_approved(self) -> int:
        """Execute every fresh approved request this worker can claim; returns how many it ran."""
        ready = await self._store.read(lambda uow: uow.requests.with_status([RequestStatus.approved], limit=100),
                                      quick=True)
        gate = asyncio.Semaphore(self._concurrency)
        ran = [0]

        async def run(request: ApprovalRequest) -> None:
            async with gate:
                try:
                    if await self.execute(request.id, listed=request):
                        ran[0] += 1
                except Exception:
                    # Each request fails alone: a sibling cancelled mid dry run would later be reported as
                    # interrupted although its real call never happened.
                    log.exception("execution.crashed", request_id=request.id)

        # Different requests run side by side (each is claimed alone, so none runs twice).
        async with asyncio.TaskGroup() as group:
            for request in sorted(ready, key=lambda r: r.approved_at or r.created_at):
                group.create_task(run(request))
        return ran[0]

    async def execute(self, request_id: str, *, listed: ApprovalRequest | None = None) -> bool:
        """Claim, dry run, real call, record. `listed`: the request as the caller just read it (the floor
        check then reads nothing; the claim reads it again under its lock)."""
        admitted = await self.gate.admit(request_id, listed)
        if not admitted.go or not await self._floor_holds(request_id, listed, admitted.facts):
            return False
        claimed = await self._claim(request_id)
        if claimed is None:
            return False
        request, tampered = claimed
        started = time.perf_counter()
        if tampered is not None:
            log.error("execution.not_as_signed", request_id=request_id, problem=tampered)
            outcome = self._outcome(
                RequestStatus.blocked, started, "blocked: what is stored is not what was signed; nothing was run",
                reason=f"{tampered}. Someone changed the database; run `signoff audit verify` and ask again.",
                dry_run="not run")
            self._metrics.inc("signoff_executions_total", outcome=outcome.status.value, cluster=label_of(request))
            await self._finish(request, outcome)
            return True
        operation = pinned_operation(request) or request.operation
        if self._silences is not None:
            await self._silences.begin(request)
        dry_summary: str | None = None
        api_error: str | None = None
        result: ClusterResult | None = None
        try:
            async with self._holding(request_id):
                dry = await self._cluster.apply(operation, dry_run=True, stamp=stamp_of(request))
                dry_summary = "passed"
                if not await self._go_ahead(request, dry):
                    raise _LeaseLost
                result = await self._cluster.apply(operation, dry_run=False, stamp=stamp_of(request))
        except _LeaseLost:
            log.warning("execution.lease_lost", request_id=request_id, worker=self.worker_id)
            outcome = self._outcome(
                RequestStatus.failed, started, "stopped before the real call: this worker's lease lapsed",
                reason="signoff was stalled (a slow database or a paused process); nothing was changed",
                dry_run=dry_summary)
        except TargetMissing as exc:
            api_error = exc.reason
            outcome = self._outcome(RequestStatus.blocked, started, f"{exc.message}; nothing was changed",
                                    reason=None, dry_run=dry_summary or "target missing")
        except ClusterUnavailable as exc:
            api_error = exc.reason
            outcome = self._no_answer(started, dry_summary, exc.message, exc.reason)
        except ClusterError as exc:
            api_error = exc.reason
            stage = "the API server refused the real call" if dry_summary else "the dry run was refused"
            outcome = self._outcome(RequestStatus.failed, started, f"{stage}: {exc.message}",
                                    reason=f"{exc.reason}; nothing was changed" if not dry_summary else exc.reason,
                                    dry_run=dry_summary or f"refused ({exc.reason})")
        except Exception as exc:  # an adapter bug must end this request clearly, not leave it executing
            log.exception("execution.unexpected_error", request_id=request_id, real_call=dry_summary is not None)
            api_error = "InternalError"
            outcome = self._no_answer(started, dry_summary, "signoff hit an internal error", type(exc).__name__)
        else:
            outcome = self._outcome(RequestStatus.succeeded, started, result.summary, reason=None,
                                    dry_run=dry_summary)
        if api_error is not None:
            self._metrics.inc("signoff_kubernetes_api_errors_total", reason=api_error, cluster=label_of(request))
        self._metrics.observe("signoff_execution_duration_seconds", outcome.duration_ms / 1000,
                              outcome=outcome.status.value, cluster=label_of(request))
        if result is not None and outcome.status is RequestStatus.succeeded:
            # Accepted is not done: `verifying` follows the effect and records the final outcome.
            if await self._verification.start(request, outcome, result):
                return True
        else:
            self._metrics.inc("signoff_executions_total", outcome=outcome.status.value, cluster=label_of(request))
        await self._finish(request, outcome)
        return True

    def _no_answer(self, started: float, dry_summary: str | None, message: str, reason: str) -> Outcome:
        """The call got no usable answer: nothing changed before the real call, unknown after it."""
        stage = "the real call" if dry_summary else "the dry run"
        unknown = "the outcome is unknown, check the cluster before asking again" if dry_summary else (
            "nothing was changed")
        return self._outcome(RequestStatus.failed, started, f"{stage} failed: {message}",
                             reason=f"{reason}: {unknown}", dry_run=dry_summary or "failed")

    def _outcome(self, status: RequestStatus, started: float, summary: str, *, reason: str | None,
                 dry_run: str | None) -> Outcome:
        return Outcome(
            status=status, summary=summary, reason=reason, dry_run=dry_run,
            duration_ms=max(1, int((time.perf_counter() - started) * 1000)), finished_at=self._clock.now(),
        )

    @contextlib.asynccontextmanager
    async def _holding(self, request_id: str) -> AsyncIterator[None]:
        """Renew the lease on a claimed request while its calls run, so a slow API server never makes the
        sweep declare it interrupted while its write may still go out."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._lease.total_seconds() / 3)
                if not await self._renew(request_id):
                    return

        # Owned here and always awaited: the renewer lives exactly as long as the calls.
        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _renew(self, request_id: str) -> bool:
        """Extend this worker's lease; False when it is no longer this worker's (lapsed, or settled)."""
        now = self._clock.now()
        try:
            return await self._store.write(lambda uow: uow.requests.renew_lease(
                request_id, worker=self.worker_id, until=now + self._lease, now=now), quick=True)
        except Exception:
            log.exception("execution.renew_failed", request_id=request_id)
            return False

    async def _floor_holds(self, request_id: str, listed: ApprovalRequest | None,
                           read: TargetFacts | None = None) -> bool:
        """Re-evaluate the risk floor with fresh facts; when it rose above what was signed, send it back."""
        if self._policy is None:
            return True
        request = listed or await self._store.read(lambda uow: uow.requests.get(request_id), quick=True)
        if request is None or request.status is not RequestStatus.approved:
            return True  # the claim decides
        if not self._policy.floor_reads_facts(request.operation):
            return True
        try:
            facts: TargetFacts | None = read or await target_facts(self._cluster, request.operation)
        except ClusterError as exc:
            log.warning("execution.facts_unavailable", request_id=request_id, error=exc.message)
            facts = None
        risk = self._policy.effective_risk(request.operation, request.stated_risk, facts)
        if request.freeze is not None:  # the change freeze it was made under raised it one level
            risk = list(Risk)[min(risk.rank + 1, Risk.critical.rank)]
        if risk.rank <= request.risk.rank:
            return True
        why = (f"the cluster now has {facts.replicas} replica(s) for {request.operation.target_ref}"
               if facts is not None and facts.replicas is not None else "the cluster could not be read")
        rule = self._policy.rule_for(risk)
        now = self._clock.now()
        policy = self._policy

        def send_back(uow: UnitOfWork) -> bool:
            current = uow.requests.get(request_id, lock=True)
            if current is None or current.version != request.version:
                return False  # someone else acted on it meanwhile
            changed = approvals.raise_risk(current, risk=risk, rule=rule, at=now, why=why, people=policy.people)
            store_transition(uow, current, changed, policy=self._policy, bus=self._bus,
                             note=risk_raised_text(changed.request, why))
            return True

        if await self._store.write(send_back):
            log.warning("execution.risk_raised", request_id=request_id, risk=str(risk), quorum=rule.quorum)
        return False

    async def _claim(self, request_id: str) -> tuple[ApprovalRequest, str | None] | None:
        """The claimed request and, when the stored request is not what was signed, why not."""
        now = self._clock.now()

        def claim(uow: UnitOfWork) -> tuple[ApprovalRequest, str | None] | None:
            request = uow.requests.get(request_id, lock=True)
            if request is None or request.status is not RequestStatus.approved:
                return None
            if not request.approval_fresh(now):
                return None  # the sweep expires it; nothing runs on a stale approval
            ahead = uow.requests.ahead_of(request)
            if ahead is not None:  # not its turn on its target: its card says for whom it waits
                mark_waiting(uow, request, ahead, at=now, policy=self._policy, bus=self._bus)
                return None
            # The counted quorum first: its sentence is the more specific one when both would refuse.
            problem = approvals.quorum_problem(request) or request_problem(request, uow.timeline, self._audit_key)
            changed = lifecycle.claimed(request, worker=self.worker_id, at=now)
            # A claim another worker won raises ConcurrentUpdate: the store runs this again, which then
            # finds the request executing and returns None.
            store_transition(uow, request, changed, policy=self._policy, bus=self._bus,
                             claim=Claim(worker=self.worker_id, lease_until=now + self._lease))
            return changed.request, problem

        claimed = await self._store.write(claim, quick=True)
        if claimed is not None:
            log.info("execution.claimed", request_id=request_id, worker=self.worker_id)
        return claimed

    async def _go_ahead(self, request: ApprovalRequest, dry: ClusterResult) -> bool:
        """One transaction between the dry run and the real call: the dry run's note, and this worker's lease
        renewed; False when the lease is no longer this worker's (lapsed, or settled), so the call must not go."""
        now = self._clock.now()
        event = NewEvent(
            at=now, type=EventType.dry_run, status=str(RequestStatus.executing),
            title="server-side dry run passed (dryRun=All)", detail=dry.summary,
            request_id=request.id, incident_id=request.incident_id,
        )

        def go_ahead(uow: UnitOfWork) -> bool:
            uow.timeline.append([event])
            return uow.requests.renew_lease(request.id, worker=self.worker_id, until=now + self._lease, now=now)

        try:
            return await self._store.write(go_ahead, quick=True)
        except Exception:
            log.exception("execution.renew_failed", request_id=request.id)
            return False

    async def _finish(self, request: ApprovalRequest, outcome: Outcome) -> None:
        def finish(uow: UnitOfWork) -> bool:
            current = uow.requests.get(request.id, lock=True)
            if current is None or current.status is not RequestStatus.executing:
                # A sweep declared it interrupted (our lease lapsed); record what really happened.
                kind = EventType.executed if outcome.status is RequestStatus.succeeded else EventType.failed
                uow.timeline.append([NewEvent(
                    at=outcome.finished_at, type=kind, status=str(current.status if current else outcome.status),
                    title=f"late outcome after the lease lapsed: {outcome.summary}", detail=outcome.reason or "",
                    request_id=request.id, incident_id=request.incident_id,
                )])
                if current is not None:
                    uow.outbox.add(thread_replies(
                        current, f"⚠️ late outcome for {request.id}: {outcome.status}: {outcome.summary}"))
                return False
            # The thread gets the result; `RequestFinished` tells the incidents and playbooks.
            store_transition(uow, current, lifecycle.finished(current, outcome=outcome), policy=self._policy,
                             bus=self._bus)
            return True

        on_time = await self._store.write(finish, quick=True)
        if self._silences is not None:
            await self._silences.end(request)  # no verification follows: the alerts may fire again now
        if on_time:
            log.info("execution.finished", request_id=request.id, outcome=str(outcome.status),
                     duration_ms=outcome.duration_ms)
        else:
            log.error("execution.finished_after_lease", request_id=request.id, outcome=str(outcome.status))
