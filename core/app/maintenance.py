"""Start-up recovery and the periodic sweep: nothing stays pending, approved or executing forever.

The sweep also pages: a request still short of its quorum `escalate_after` its creation pages the
level's `escalate_to` groups, and `remind_before_expiry` its expiry reminds the approvers who have not
signed. Each happens once across replicas: the marker is set on the request row in the same transaction
as the message, under the row lock and the row's version (a compare-and-swap), so the replica that
loses the race changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Protocol

import structlog

from core.app.messagebus import MessageBus
from core.app.notify import group_mentions, not_yet_signed, people_mentions
from core.app.oncall import OnCall
from core.app.silences import SilenceKeeper
from core.app.transitions import store_transition
from core.chat.cards import Mentions
from core.domain import approvals, lifecycle
from core.domain.approvals import ApprovalRequest, RequestStatus, Transition
from core.domain.policy import Policy, SignRule, format_duration
from core.errors import ConcurrentUpdate
from core.ports import Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)


def _overdue_transition(request: ApprovalRequest, now: datetime) -> Transition | None:
    """What an overdue request becomes. Executing rows only reach here once their lease lapsed."""
    if request.status is RequestStatus.executing:
        return lifecycle.interrupted(request, at=now)
    if approvals.is_overdue(request, now):
        return approvals.expire(request, at=now)
    return None


# Rate counters only matter for a minute; an hour is ample.
RATE_EVENTS_KEPT = timedelta(hours=1)
# Pruning is cheap but not free: the sweep runs every few seconds, pruning at most this often.
PRUNE_EVERY = timedelta(minutes=10)
DEFAULT_KEEP = timedelta(days=30)


Page = Literal["escalate", "remind"]


def due_pages(request: ApprovalRequest, rule: SignRule, now: datetime) -> list[Page]:
    """The pages a pending request is due for now (each at most once in its life)."""
    if request.status is not RequestStatus.pending or now >= request.expires_at:
        return []
    due: list[Page] = []
    if (rule.escalate_after is not None and request.escalated_at is None
            and now >= request.created_at + rule.escalate_after):
        due.append("escalate")
    if (rule.remind_before_expiry is not None and request.reminded_at is None
            and now >= request.expires_at - rule.remind_before_expiry):
        due.append("remind")
    return due


def _pages_anyone(policy: Policy) -> bool:
    return any(policy.rule_for(r).escalate_after or policy.rule_for(r).remind_before_expiry
               for r in policy.risk)


class OverdueReviews(Protocol):
    async def remind_overdue(self) -> int: ...


class Maintenance:
    def __init__(self, *, store: Store, clock: Clock, policy: Policy | None = None, keep: timedelta = DEFAULT_KEEP,
                 bus: MessageBus | None = None, reviews: OverdueReviews | None = None) -> None:
        self._store = store
        self._reviews = reviews  # break glass reviews past `review_within` (core/app/breakglass.py)
        self._clock = clock
        self._bus = bus
        self._policy = policy
        self._keep = keep
        self._pruned_at: datetime | None = None
        self.on_call: OnCall | None = None  # `escalate_to` may name schedules (`oncall.<name>`)
        self.silences: SilenceKeeper | None = None  # an interrupted request's silence ends now, not at its deadline

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
        if self._policy is not None and _pages_anyone(self._policy):
            counts.update(await self._page_all(self._policy, now))
        if self._reviews is not None and self._policy is not None and self._policy.breakglass is not None:
            counts["reviews_overdue"] = await self._reviews.remind_overdue()
        if any(counts.values()):
            log.info("sweep.done", **counts)
        return counts

    async def _page_all(self, policy: Policy, now: datetime) -> dict[str, int]:
        pending = await self._store.read(
            lambda uow: uow.requests.with_status([RequestStatus.pending], limit=10_000))
        counts: dict[str, int] = {"escalated": 0, "reminded": 0}
        for request in pending:
            for page in due_pages(request, policy.rule_for(request.risk), now):
                if await self._page(policy, request.id, page):
                    counts["escalated" if page == "escalate" else "reminded"] += 1
        return counts

    async def _page(self, policy: Policy, request_id: str, page: Page) -> bool:
        """Escalate or remind once: False when another replica (or a signature) got there first."""
        now = self._clock.now()

        def apply(uow: UnitOfWork) -> bool:
            request = uow.requests.get(request_id, lock=True)
            if request is None:
                return False
            rule = policy.rule_for(request.risk)
            if page not in due_pages(request, rule, now):
                return False  # signed, expired, or paged by another replica meanwhile
            if page == "escalate":
                groups = rule.escalate_to
                changed = approvals.escalate(request, at=now, to=groups)
                text = (f"⏫ {request.id} still has {request.signed}/{request.quorum} signature(s) after "
                        f"{format_duration(now - request.created_at)}: escalating to {', '.join(groups)}. "
                        f"`{request.operation.command()}` expires at {request.expires_at:%H:%M UTC}; "
                        "sign on the card.")

                def mentions(platform: str) -> Mentions:
                    if self.on_call is not None:
                        return self.on_call.mentions(groups, platform, fallback=rule.approvers)
                    return group_mentions(policy, groups, platform)
            else:
                waiting = not_yet_signed(policy, request)
                changed = approvals.remind(request, at=now, waiting=tuple(waiting))
                who = ", ".join(waiting) if waiting else request.sign_rule.describe_approvers()
                text = (f"⏰ {request.id} expires in {format_duration(request.expires_at - now)} with "
                        f"{request.signed}/{request.quorum} signature(s): {who}, "
                        f"`{request.operation.command()}` is waiting for you; sign on the card.")

                def mentions(platform: str) -> Mentions:
                    if waiting:
                        return people_mentions(policy, waiting, platform)
                    return group_mentions(policy, request.approvers, platform, excluding=request.requested_by)
            # The card shows an escalation; a reminder only pages.
            store_transition(uow, request, changed, policy=policy, bus=self._bus, note=text, mentions=mentions,
                             card=page == "escalate")
            return True

        try:
            done = await self._store.write(apply)
        except ConcurrentUpdate:
            return False  # another replica's write won the compare-and-swap
        if done:
            log.info("request.paged", request_id=request_id, page=page)
        return done

    async def _settle(self, request_id: str, *, force_interrupt: bool = False) -> RequestStatus | None:
        now = self._clock.now()

        def settle(uow: UnitOfWork) -> RequestStatus | None:
            request = uow.requests.get(request_id, lock=True)
            if request is None:
                return None
            if force_interrupt:
                executing = request.status is RequestStatus.executing
                changed = lifecycle.interrupted(request, at=now) if executing else None
            elif request.status is RequestStatus.executing and not uow.requests.lease_lapsed(request_id, now):
                return None  # renewed since the sweep listed it: the worker is alive
            else:
                changed = _overdue_transition(request, now)
            if changed is None:
                return None
            store_transition(uow, request, changed, policy=self._policy, bus=self._bus)
            return changed.request.status

        status = await self._store.write(settle)
        if status is not None:
            log.info("request.settled", request_id=request_id, status=str(status))
        if status is RequestStatus.interrupted and self.silences is not None:
            interrupted = await self._store.read(lambda uow: uow.requests.get(request_id))
            if interrupted is not None:
                await self.silences.end(interrupted)
        return status
