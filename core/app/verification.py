"""Verification: follow an accepted operation to its effect, then end it `succeeded` or `failed`.

A `verifying` request lives in the database with its deadline and when to look next, so this
is a supervised background activity that a restart simply resumes (looking is read-only, so
it is never `interrupted`). A rollout (restart, rollback, scale) is followed by the cluster
adapter's watches: each change wakes a look (`nudge`), which reads the watches' view (no call);
other operations, and a rollout whose watch broke, are read on a backing-off schedule. A new pod
that restarted `max_restarts` times or waited `stuck_after` in an image, config or crash-loop
reason fails the request at once (core/domain/fail_fast.py), with the way back. Progress reaches
the card through the coalesced card updates, and the thread through one progress message edited
in place (progress_notes.py); the result is one more message, at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from core.app.clusters import Followed, label_of
from core.app.messagebus import MessageBus
from core.app.metrics import Metrics
from core.app.notify import thread_replies
from core.app.progress_notes import ProgressNotes
from core.app.service import MAX_REASON, SYSTEM, ApprovalService
from core.app.signals import Wakeup
from core.app.silences import SilenceKeeper
from core.app.transitions import store_transition
from core.chat.cards import verified_note, verify_failed_note
from core.chat.stale_texts import overtaken_note
from core.domain import lifecycle
from core.domain.approvals import ApprovalRequest, Outcome, Proposal, RequestStatus, Transition
from core.domain.cluster import ClusterError, ClusterResult, TargetMissing
from core.domain.fail_fast import judge, said_once
from core.domain.ids import as_incident_id
from core.domain.operations import RestartOp, RollbackOp
from core.domain.verify import DEFAULT_TIMEOUT, Progress, poll_delay
from core.ports import Clock, Cluster, Store, UnitOfWork

log = structlog.get_logger(__name__)
# Between looks at a rollout that watches follow (each change wakes verification anyway).
FOLLOWED_POLL = timedelta(seconds=5)
# Drafts the way back for a failed restart or rollback before the transaction that records the
# failure (it reads the cluster); `create` then stores it inside that transaction.
WayBack = Callable[[ApprovalRequest, str], Awaitable[Callable[[UnitOfWork], ApprovalRequest] | None]]


def way_back_through(service: ApprovalService) -> WayBack:
    """The way back from a failed restart or rollback of a Deployment: `kubectl rollout undo`, proposed
    as an ordinary request (signed like any other) in the same incident, with the evidence on its card."""

    async def draft(request: ApprovalRequest, evidence: str) -> Callable[[UnitOfWork], ApprovalRequest]:
        op = request.operation
        baseline = request.verification.baseline if request.verification else None
        revision = ""
        if baseline is not None and baseline.revision:
            revision = f" (revision {baseline.revision}, healthy before {request.id})"
        rationale = f"{request.id} {evidence}"[:MAX_REASON - 100]
        drafted = await service.draft(
            f"rollout undo deployment/{op.name} -n {op.namespace}", by=SYSTEM, via="signoff",
            reason=f"the way back{revision}: {request.id} did not verify"[:MAX_REASON],
            incident_id=as_incident_id(request.incident_id) if request.incident_id else None,
            proposal=Proposal(track="way back", rationale=rationale), cluster=request.cluster,
        )
        drafted = dataclasses.replace(drafted, places=request.places or drafted.places)
        return lambda uow: service.create(uow, drafted)

    return draft


def has_way_back(request: ApprovalRequest) -> bool:
    """A restart or rollback of a Deployment can be undone with `kubectl rollout undo`."""
    op = request.operation
    return isinstance(op, RollbackOp) or (isinstance(op, RestartOp) and op.target == "deployment")


class VerificationService:
    def __init__(
        self, *, store: Store, cluster: Cluster, clock: Clock, metrics: Metrics | None = None,
        bus: MessageBus | None = None, way_back: WayBack | None = None, timeout: timedelta = DEFAULT_TIMEOUT,
        concurrency: int = 32, max_restarts: int = 3, stuck_after: timedelta = timedelta(minutes=2),
        silences: SilenceKeeper | None = None,
    ) -> None:
        self._store = store
        self._cluster = cluster
        self._clock = clock
        self._metrics = metrics or Metrics()
        # Other services (incidents, playbooks) hear of the final outcome inside the transaction recording it.
        self._bus = bus
        self.timeout = timeout
        self._gate = asyncio.Semaphore(concurrency)
        self._way_back = way_back
        self.next_due: datetime | None = None
        # Failing fast: a new pod this often restarted, or this long stuck, fails the request at once.
        self.max_restarts, self.stuck_after = max_restarts, stuck_after
        self._stuck: dict[str, dict[str, datetime]] = {}  # request id → pod → seen stuck since
        self.notes = ProgressNotes()
        self._silences = silences  # the silence made when the operation started ends with the verification
        # Watches wake verification: the cluster says which follow changed; its request is looked at now.
        self._followed: dict[str, str] = {}  # follow key → request id
        self._nudged: set[str] = set()
        self._wakeup = Wakeup()
        if isinstance(cluster, Followed):
            cluster.on_change(self.nudge)

    def nudge(self, key: str) -> None:
        """A followed rollout changed (called on the loop by the cluster adapter): look at it now."""
        request_id = self._followed.get(key)
        if request_id is not None:
            self._nudged.add(request_id)
            self._wakeup.set()

    async def wait(self, ceiling: float) -> None:
        """The background loop's pause: until the next look is due, or a watch says something changed."""
        await self._wakeup.wait(self.wait_s(ceiling))

    async def start(self, request: ApprovalRequest, outcome: Outcome, baseline: ClusterResult) -> bool:
        """executing → verifying, then the first look right away (a healthy no-op is verified at once)."""
        now = self._clock.now()

        def begin(uow: UnitOfWork) -> ApprovalRequest | None:
            current = uow.requests.get(request.id, lock=True)
            if current is None or current.status is not RequestStatus.executing:
                return None
            changed = lifecycle.verifying(current, outcome=outcome, baseline=baseline, at=now, deadline=self.timeout)
            return store_transition(uow, current, changed, bus=self._bus)

        started = await self._store.write(begin, quick=True)
        if started is None:
            return False
        log.info("verification.started", request_id=request.id, op=request.operation.kind)
        await self.look(started)
        return True

    async def run_due(self) -> int:
        """Look at every verifying request whose next look is due; returns how many were looked at."""
        now = self._clock.now()
        nudged, self._nudged = self._nudged, set()
        if nudged and self.next_due is not None and self.next_due > now:
            # Only watches woke us: read just the requests they named (the others are not due).
            return await self._look_all([r for r in await self._store.read(
                lambda uow: [uow.requests.get(i) for i in sorted(nudged)], quick=True) if r is not None
                and r.status is RequestStatus.verifying and r.verification is not None])
        verifying = await self._store.read(
            lambda uow: uow.requests.with_status([RequestStatus.verifying], limit=10_000))
        due = [r for r in verifying if r.verification is not None
               and (r.verification.next_look_at <= now or r.id in nudged)]
        later = [r.verification.next_look_at for r in verifying
                 if r.verification is not None and r.verification.next_look_at > now]
        self.next_due = min(later, default=None)
        return await self._look_all(due)

    async def _look_all(self, due: list[ApprovalRequest]) -> int:
        if not due:
            return 0

        async def one(request: ApprovalRequest) -> None:
            async with self._gate:
                try:
                    await self.look(request)
                except Exception:
                    # One request's trouble must not stop the others; it is looked at again next pass.
                    log.exception("verification.look_crashed", request_id=request.id)

        async with asyncio.TaskGroup() as group:
            for request in due:
                group.create_task(one(request))
        return len(due)

    def wait_s(self, ceiling: float) -> float:
        """How long the background loop may sleep before the next look is due."""
        if self.next_due is None:
            return ceiling
        return max(0.05, min(ceiling, (self.next_due - self._clock.now()).total_seconds()))

    async def look(self, request: ApprovalRequest) -> None:
        verification = request.verification
        if verification is None:
            return
        try:
            progress = await self._cluster.observe(request.operation, verification.baseline)
        except TargetMissing as exc:
            await self._end(request, failed=True, reason=f"the target is gone ({exc.reason})", progress=Progress())
            return
        except Exception as exc:  # a look that fails is tried again, until the deadline
            why = exc.reason if isinstance(exc, ClusterError) else type(exc).__name__
            if isinstance(exc, ClusterError):
                log.warning("verification.look_failed", request_id=request.id, error=exc.message, reason=why)
            else:
                log.exception("verification.look_crashed", request_id=request.id)
            if self._clock.now() >= verification.deadline_at:
                await self._end(request, failed=True, progress=verification.progress or Progress(),
                                reason=f"the cluster could not be read until the deadline ({why})")
            else:
                await self._remember(request, verification.progress or Progress())
            return
        now = self._clock.now()
        if progress.follow is not None:
            self._followed[progress.follow] = request.id
        if not progress.done and await self._failed_fast(request, progress, now):
            return
        if progress.follow is not None and not progress.done and not progress.failed \
                and now < verification.next_look_at and verification.progress is not None \
                and verification.progress.counts() == progress.counts() and not self.notes.changed(request, progress):
            return  # a watch woke us for a change nobody sees: nothing to store until the next look is due
        deadline_at, timeout_from = verification.deadline_at, None
        if progress.deadline_s is not None and verification.timeout_from != "progressDeadlineSeconds":
            # The workload's own deadline wins over the policy's.
            deadline_at = verification.started_at + timedelta(seconds=progress.deadline_s)
            timeout_from = "progressDeadlineSeconds"
        if progress.done:
            await self._end(request, failed=False, progress=progress)
        elif progress.failed or now >= deadline_at:
            within = _what_timeout(timeout_from or verification.timeout_from, deadline_at - verification.started_at)
            reason = progress.reason or f"the effect did not hold within {within}"
            detailed = progress
            try:
                detailed = await self._cluster.observe(request.operation, verification.baseline, reasons=True)
            except ClusterError as exc:
                log.warning("verification.reasons_unavailable", request_id=request.id, error=exc.message)
            await self._end(request, failed=True, reason=reason, progress=detailed)
        else:
            await self._remember(request, progress, deadline_at=deadline_at, timeout_from=timeout_from)

    async def _failed_fast(self, request: ApprovalRequest, progress: Progress, now: datetime) -> bool:
        """A new pod that restarted `max_restarts` times, or waited `stuck_after` in an image, config or
        crash-loop reason, fails the request now (the way back is proposed with it)."""
        verdict = judge(progress.new_pods, max_restarts=self.max_restarts, stuck_after=self.stuck_after, now=now,
                        stuck_since=self._stuck.get(request.id, {}))
        self._stuck[request.id] = verdict.stuck_since
        if verdict.reason is None:
            return False
        assert request.verification is not None
        try:  # ends the follow; the pods named are the new ones that failed
            await self._cluster.observe(request.operation, request.verification.baseline, reasons=True)
        except ClusterError as exc:
            log.warning("verification.reasons_unavailable", request_id=request.id, error=exc.message)
        log.info("verification.failed_fast", request_id=request.id, reason=verdict.reason,
                 pods=[p.name for p in verdict.pods])
        await self._end(request, failed=True, reason=verdict.reason, progress=progress.model_copy(
            update={"pods": verdict.pods, "failed": True, "reason": verdict.reason}))
        return True

    async def _remember(self, request: ApprovalRequest, progress: Progress, *, deadline_at: datetime | None = None,
                        timeout_from: str | None = None) -> None:
        verification = request.verification
        assert verification is not None
        now = self._clock.now()
        deadline = deadline_at or verification.deadline_at
        delay = poll_delay(verification.looks)
        if progress.follow is not None:  # watches wake us on every change: the poll is only a safety net
            delay = max(delay, FOLLOWED_POLL)
        stuck = [since + self.stuck_after for since in self._stuck.get(request.id, {}).values()]
        next_look_at = min(now + delay, max(deadline, now), *(max(at, now) for at in stuck))
        changed_view = verification.progress is None or verification.progress.counts() != progress.counts()
        notes = self.notes.messages(request, progress.new_pods, now)

        def remember(uow: UnitOfWork) -> bool:
            current = uow.requests.get(request.id, lock=True)
            if current is None or current.version != request.version:
                return False  # another replica looked meanwhile
            updated = lifecycle.looked(current, progress=progress, next_look_at=next_look_at,
                                       deadline_at=deadline_at, timeout_from=timeout_from)
            # Progress reaches the card only when what it shows changed; the timeline waits for the end.
            store_transition(uow, current, Transition(updated, ()), bus=self._bus, card=changed_view)
            uow.outbox.add(notes)
            return True

        await self._store.write(remember, quick=True)
        if self.next_due is None or next_look_at < self.next_due:
            self.next_due = next_look_at

    def _forget(self, request_id: str) -> None:
        self._stuck.pop(request_id, None)
        self.notes.forget(request_id)
        for key in [k for k, v in self._followed.items() if v == request_id]:
            del self._followed[key]

    async def _end(self, request: ApprovalRequest, *, failed: bool, progress: Progress, reason: str = "") -> None:
        verification = request.verification
        previous = request.outcome
        assert verification is not None and previous is not None
        now = self._clock.now()
        seconds = (now - verification.started_at).total_seconds()
        if failed:
            note = verify_failed_note(seconds, reason, said_once(progress.pods))
            outcome = previous.model_copy(update={
                "status": RequestStatus.failed, "summary": f"{previous.summary}; {note}", "finished_at": now,
            })
        else:
            note = (overtaken_note(seconds, progress.overtaken) if progress.overtaken
                    else verified_note(seconds, progress))
            outcome = previous.model_copy(update={
                "status": RequestStatus.succeeded, "summary": f"{previous.summary}; {note}", "finished_at": now,
            })
        create_way_back = None
        if failed and self._way_back is not None and has_way_back(request):
            try:
                create_way_back = await self._way_back(request, note)
            except Exception:
                # The failure is recorded whatever happens; a person can still ask for the undo.
                log.exception("verification.way_back_failed", request_id=request.id)

        def end(uow: UnitOfWork) -> ApprovalRequest | None:
            current = uow.requests.get(request.id, lock=True)
            if current is None or current.status is not RequestStatus.verifying:
                return None
            changed = lifecycle.verified(current, outcome=outcome, progress=progress)
            # The thread gets the result; `RequestFinished` tells the incidents and playbooks.
            store_transition(uow, current, changed, bus=self._bus)
            if create_way_back is not None:
                back = create_way_back(uow)
                uow.outbox.add(thread_replies(changed.request, (
                    f"↩️ {back.id} proposes the way back: `{back.operation.command()}` (to the revision before "
                    f"{request.id}). It runs only once it is signed.")))
            return changed.request

        ended = await self._store.write(end, quick=True)
        self._forget(request.id)
        if ended is None:
            return
        if self._silences is not None:
            await self._silences.end(ended)
        self._metrics.inc("signoff_executions_total", outcome=outcome.status.value, cluster=label_of(request))
        log.info("verification.ended", request_id=request.id, outcome=str(outcome.status), seconds=round(seconds, 3),
                 looks=verification.looks + 1)


def _what_timeout(source: str, span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if source == "progressDeadlineSeconds":
        return f"progressDeadlineSeconds ({seconds} s)"
    return f"the verify timeout ({seconds} s)"
