"""Application service for approval requests: each command is one transaction.

A command loads the request, applies a pure transition from `core.approvals`, and stores
the new state, its timeline events and its chat messages together, so none of the three
can exist without the others.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from core import approvals
from core.approvals import ApprovalRequest, Place, Proposal, RequestStatus, Transition
from core.blast import BlastRadius, assess
from core.cluster import Cluster, ClusterError, TargetFacts
from core.errors import (
    AlreadySigned,
    NotAuthorized,
    NotFound,
    ParseError,
    RateLimited,
    Refusal,
    RequestExpired,
    SelfApprovalForbidden,
)
from core.events import EventType, NewEvent, TimelineEvent
from core.notify import card_posts, card_updates, routed, status_note, thread_replies
from core.operations import Operation, parse_operation
from core.policy import Person, Policy, Risk
from core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from core.signals import Signals

log = structlog.get_logger(__name__)

MAX_REASON = 500
INCIDENT_ID = re.compile(r"^INC-[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
REQUEST_ID = re.compile(r"^R-\d{1,9}$")
SYSTEM = Person(name="signoff")

# Refusals everyone in the thread should see (attempts to get around the rules), not just the clicker.
_THREAD_WORTHY = (SelfApprovalForbidden, NotAuthorized)


@dataclass
class RateLimit:
    """Requests per person in a sliding window, so one account cannot flood the channel."""

    per_person: int = 20
    window_s: float = 60.0
    _seen: dict[str, list[float]] = field(default_factory=dict)

    def check(self, person: str, now: float) -> None:
        recent = [t for t in self._seen.get(person, []) if now - t < self.window_s]
        if len(recent) >= self.per_person:
            raise RateLimited(
                f"You made {len(recent)} requests in the last {int(self.window_s)} s; "
                "wait a minute and ask again."
            )
        recent.append(now)
        self._seen[person] = recent


def normalize_request_id(text: str) -> str:
    """`r-42`, `42` and `R-42` all mean R-42; anything else is named back to the person."""
    cleaned = text.strip().upper()
    if cleaned.isdigit():
        cleaned = f"R-{cleaned}"
    if not REQUEST_ID.match(cleaned):
        raise NotFound(f"`{text[:40]}` is not a request id; request ids look like R-42.")
    return cleaned


class ApprovalService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, policy: Policy, cluster: Cluster, clock: Clock, signals: Signals,
        default_places: dict[str, str] | None = None, rate_limit: RateLimit | None = None,
        on_created: Callable[[UnitOfWork, ApprovalRequest], Awaitable[None]] | None = None,
    ) -> None:
        self._uow = uow
        self.policy = policy
        self._cluster = cluster
        self._clock = clock
        self._signals = signals
        self.default_places = dict(default_places or {})
        self._rate_limit = rate_limit or RateLimit()
        self._on_created = on_created

    async def request(
        self, action: str, *, by: Person, via: str, origin: Place | None = None, risk: Risk | None = None,
        reason: str | None = None, incident_id: str | None = None, proposal: Proposal | None = None,
    ) -> ApprovalRequest:
        operation = parse_operation(action)
        self.policy.check_operation(operation)
        if reason is not None and len(reason) > MAX_REASON:
            raise ParseError(f"The reason is {len(reason)} characters long; keep it under {MAX_REASON}.")
        if incident_id is not None and not INCIDENT_ID.match(incident_id):
            raise ParseError(f"`{incident_id[:50]}` is not an incident id; incident ids look like INC-7.")
        if by is not SYSTEM:
            self._rate_limit.check(by.name, self._clock.now().timestamp())
        facts, blast = await self._inspect(operation)
        effective = self.policy.effective_risk(operation, risk, facts)
        rule = self.policy.rule_for(effective)
        places = routed((), self.default_places, origin)
        now = self._clock.now()
        async with self._uow() as uow:
            request_id = await uow.requests.next_id()
            created = approvals.new_request(
                request_id=request_id, operation=operation, action=action.strip(), requested_by=by, via=via,
                at=now, risk=effective, stated_risk=risk, rule=rule,
                expire_after=self.policy.requests.expire_after, reason=reason, incident_id=incident_id,
                blast=blast, proposal=proposal, places=places,
            )
            await uow.requests.add(created.request)
            await uow.timeline.append(created.events)
            await uow.outbox.add(card_posts(created.request))
            if self._on_created is not None:
                await self._on_created(uow, created.request)
            await uow.commit()
        self._signals.outbox.set()
        log.info("request.created", request_id=request_id, risk=str(effective), quorum=rule.quorum,
                 requested_by=by.name, via=via)
        return created.request

    async def _inspect(self, operation: Operation) -> tuple[TargetFacts | None, BlastRadius]:
        try:
            facts = await self._cluster.inspect(operation)
        except ClusterError as exc:
            log.warning("request.blast_unavailable", error=exc.message)
            return None, BlastRadius(target_found=True, note=f"could not read the cluster: {exc.message}",
                                     downtime="unknown", data_impact="unknown")
        return facts, assess(operation, facts)

    async def sign(self, request_id: str, *, by: Person, via: str) -> ApprovalRequest:
        def transition(request: ApprovalRequest) -> Transition:
            return approvals.sign(request, by=by, at=self._clock.now(), via=via)
        return await self._act(request_id, by, via, "sign", transition)

    async def reject(self, request_id: str, *, by: Person, via: str, reason: str | None = None) -> ApprovalRequest:
        def transition(request: ApprovalRequest) -> Transition:
            return approvals.reject(request, by=by, at=self._clock.now(), via=via, reason=reason)
        return await self._act(request_id, by, via, "reject", transition)

    async def cancel(self, request_id: str, *, by: Person, via: str) -> ApprovalRequest:
        def transition(request: ApprovalRequest) -> Transition:
            return approvals.cancel(request, by=by, at=self._clock.now())
        return await self._act(request_id, by, via, "cancel", transition)

    async def _act(
        self, request_id: str, by: Person, via: str, verb: str,
        transition: Callable[[ApprovalRequest], Transition],
    ) -> ApprovalRequest:
        request_id = normalize_request_id(request_id)
        try:
            async with self._uow() as uow:
                request = await uow.requests.get(request_id, lock=True)
                if request is None:
                    raise NotFound(f"There is no request {request_id}; `list` shows the pending ones.")
                now = self._clock.now()
                if request.status is RequestStatus.pending and approvals.is_overdue(request, now):
                    await self._store(uow, request, approvals.expire(request, at=now))
                    await uow.commit()
                    self._signals.outbox.set()
                    raise RequestExpired(
                        f"{request_id} expired at {request.expires_at:%H:%M UTC} without reaching its quorum; "
                        "ask for it again if it is still needed.", request_id,
                    )
                changed = transition(request)
                new_signatures = changed.request.signatures[len(request.signatures):]
                for signature in new_signatures:
                    await uow.requests.add_signature(request.id, signature)
                await self._store(uow, request, changed)
                await uow.commit()
        except RequestExpired:
            raise
        except Refusal as refusal:
            await self._record_refusal(request_id, by, via, verb, refusal)
            raise
        self._signals.outbox.set()
        if changed.request.status is RequestStatus.approved:
            self._signals.execution.set()
            log.info("request.approved", request_id=request_id, signatures=changed.request.signed)
        else:
            log.info("request.acted", request_id=request_id, action=verb, person=by.name,
                     status=str(changed.request.status), signatures=changed.request.signed)
        return changed.request

    async def _store(self, uow: UnitOfWork, before: ApprovalRequest, changed: Transition) -> None:
        after = changed.request
        await uow.requests.update(after, expected_version=before.version)
        await uow.timeline.append(changed.events)
        await uow.outbox.add(card_updates(after))
        note = status_note(after)
        if note:
            await uow.outbox.add(thread_replies(after, note))

    async def _record_refusal(
        self, request_id: str, by: Person, via: str, verb: str, refusal: Refusal,
    ) -> None:
        """Refusals go into the timeline in their own transaction: the attempt itself is history."""
        async with self._uow() as uow:
            request = await uow.requests.get(request_id)
            if request is None:
                return
            event = NewEvent(
                at=self._clock.now(), type=EventType.refused, status=str(request.status),
                title=f"refused {verb} by {by.name}: {refusal.code}", detail=refusal.message,
                actor=by.name, actor_role=_role(request, by), request_id=request.id,
                incident_id=request.incident_id,
            )
            await uow.timeline.append([event])
            if isinstance(refusal, _THREAD_WORTHY) and not isinstance(refusal, AlreadySigned):
                await uow.outbox.add(thread_replies(
                    request, f"🚫 {by.name} tried to {verb} {request.id} via {via} and was refused: {refusal.message}",
                ))
            await uow.commit()
        self._signals.outbox.set()
        log.info("request.refused", request_id=request_id, person=by.name, action=verb, code=refusal.code)

    async def get(self, request_id: str) -> ApprovalRequest:
        request_id = normalize_request_id(request_id)
        async with self._uow(write=False) as uow:
            request = await uow.requests.get(request_id)
        if request is None:
            raise NotFound(f"There is no request {request_id}; `list` shows the pending ones.")
        return request

    async def pending(self) -> list[ApprovalRequest]:
        async with self._uow(write=False) as uow:
            return await uow.requests.with_status([RequestStatus.pending, RequestStatus.approved,
                                            RequestStatus.executing])

    async def timeline(self, subject_id: str) -> list[TimelineEvent]:
        async with self._uow(write=False) as uow:
            if subject_id.upper().startswith("INC-"):
                return await uow.timeline.for_incident(subject_id)
            return await uow.timeline.for_request(normalize_request_id(subject_id))

    async def key_for_message(self, platform: str, message_or_thread_id: str) -> str | None:
        """Which request (R-…) or playbook (PB-…) a chat message or thread belongs to."""
        async with self._uow(write=False) as uow:
            return await uow.outbox.key_for_message(platform, message_or_thread_id)

    async def request_thread(self, request_id: str, text: str, place: Place | None = None) -> None:
        """Post `text` into a request's thread (on one platform, or on all of them)."""
        async with self._uow() as uow:
            request = await uow.requests.get(request_id)
            if request is None:
                raise NotFound(f"There is no request {request_id}.")
            places = [place] if place is not None else None
            await uow.outbox.add(thread_replies(request, text, places))
            await uow.commit()
        self._signals.outbox.set()


def _role(request: ApprovalRequest, by: Person) -> str:
    if by.name == request.requested_by:
        return "requester"
    return "approver" if request.sign_rule.admits(by) else "outsider"
