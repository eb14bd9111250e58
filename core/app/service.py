"""Application service for approval requests: each command is one transaction.

A command loads the request, applies a pure transition from `core.domain.approvals`, and stores
the new state, its timeline events and its chat messages together, so none of the three
can exist without the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from core.app.clusters import place_request, registry_of
from core.app.freezes import FreezeWindows, no_windows, under_freeze
from core.app.identity import as_requester
from core.app.messagebus import MessageBus
from core.app.metrics import QUORUM_BUCKETS, Metrics
from core.app.notify import routed, thread_replies, who_can_sign
from core.app.oncall import OnCall, first_post_mentions
from core.app.preview import preview_request
from core.app.signals import Signals
from core.app.transitions import store_transition
from core.domain import approvals
from core.domain.approvals import ApprovalRequest, Place, Proposal, RequestStatus, Transition
from core.domain.blast import BlastRadius, assess
from core.domain.changes import Preview
from core.domain.cluster import ClusterError, TargetFacts
from core.domain.events import EventType, NewEvent, TimelineEvent, parse_at
from core.domain.feasibility import refuse_unverifiable
from core.domain.freeze import FreezeInForce
from core.domain.ids import (
    AnyId,
    IncidentId,
    RequestId,
    Subject,
    as_incident_id,
    as_request_id,
    as_subject,
    stored_key,
)
from core.domain.operations import Operation, parse_operation
from core.domain.pinning import Pin, pin_of
from core.domain.policy import Person, Policy, Risk, SignRule
from core.domain.request_preview import with_preview
from core.errors import (
    NotAuthorized,
    NotFound,
    ParseError,
    QuorumUnreachable,
    RateLimited,
    Refusal,
    RequestExpired,
    SelfApprovalForbidden,
)
from core.ports import Clock, Cluster, Store, UnitOfWork

log = structlog.get_logger(__name__)

MAX_REASON = 500
SYSTEM = Person(name="signoff")
RATE_WINDOW = timedelta(minutes=1)
MAX_REFUSALS_RECORDED = 5  # per person per minute, in the timeline and the thread

# Refusals everyone in the thread should see (attempts to get around the rules), not just the clicker.
_THREAD_WORTHY = (SelfApprovalForbidden, NotAuthorized)



@dataclass(frozen=True)
class RequestDraft:
    operation: Operation
    action: str
    by: Person
    via: str
    risk: Risk
    stated_risk: Risk | None
    rule: SignRule
    reason: str | None
    incident_id: IncidentId | None
    blast: BlastRadius
    proposal: Proposal | None
    places: tuple[Place, ...]
    freeze: FreezeInForce | None = None
    cluster: str | None = None
    pin: Pin | None = None  # the target as read now: what the signatures stand for (core/domain/pinning.py)
    preview: Preview | None = None


class ApprovalService:
    def __init__(
        self, *, store: Store, policy: Policy, cluster: Cluster, clock: Clock, signals: Signals,
        default_places: dict[str, str] | None = None, metrics: Metrics | None = None, bus: MessageBus | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or Metrics()
        self.policy = policy
        self.clusters = registry_of(cluster)
        self._cluster: Cluster = self.clusters
        self._clock = clock
        self._signals = signals
        # Platform → the channel where requests from elsewhere (the API, alerts) post their card; shared with
        # whoever announces outside a request's thread, and filled as chat adapters register.
        self.default_places = default_places if default_places is not None else {}
        # Other services (incidents) hear of a new request inside the transaction that stores it.
        self._bus = bus
        self.freeze_windows: FreezeWindows = no_windows  # `ical` freezes' windows, read in the background
        self.on_call: OnCall | None = None  # who the schedules a level's `page` names are, read in the background

    async def request(
        self, action: str, *, by: Person, via: str, origin: Place | None = None, risk: Risk | None = None,
        reason: str | None = None, incident_id: IncidentId | None = None, proposal: Proposal | None = None,
        cluster: str | None = None,
    ) -> ApprovalRequest:
        draft = await self.draft(action, by=by, via=via, origin=origin, risk=risk, reason=reason,
                                 incident_id=incident_id, proposal=proposal, cluster=cluster)
        request = await self._store.write(lambda uow: self.create(uow, draft), quick=True)
        self.created(request)
        return request

    async def draft(
        self, action: str, *, by: Person, via: str, origin: Place | None = None, risk: Risk | None = None,
        reason: str | None = None, incident_id: IncidentId | None = None, proposal: Proposal | None = None,
        cluster: str | None = None,
    ) -> RequestDraft:
        """Everything a request needs before it is stored: parsing, its cluster, policy, the blast radius."""
        operation, cluster, defaults = place_request(self.policy, self.clusters, parse_operation(action),
                                                     named=cluster, origin=origin, defaults=self.default_places)
        self.policy.check_operation(operation)
        operation = await as_requester(self.policy, self.clusters, operation, by, system=by is SYSTEM)
        if reason is not None and len(reason) > MAX_REASON:
            raise ParseError(f"The reason is {len(reason)} characters long; keep it under {MAX_REASON}.")
        if incident_id is not None:
            incident_id = as_incident_id(incident_id)
        if by is not SYSTEM:
            # A cheap early answer; `create` counts again inside the transaction that stores the request.
            await self._store.read(lambda uow: self._check_rate(uow, by.name), quick=True)
        facts, blast = await self._inspect(operation)
        refuse_unverifiable(operation, facts)
        effective = self.policy.effective_risk(operation, risk, facts)
        effective, freeze = under_freeze(self.policy, effective, operation.command(), self._clock.now(),
                                         self.freeze_windows)
        rule = self.policy.rule_for(effective)
        shortfall = self.policy.quorum_shortfall(rule, requester=by.name)
        if shortfall is not None:
            # Refused now rather than left to expire: nobody could ever approve it.
            raise QuorumUnreachable(
                f"{operation.command()} is {effective} risk and can never be approved: {shortfall}, "
                f"not counting the requester ({by.name}). Ask an admin to add approvers to the policy "
                f"({self.policy.source}) or lower the quorum for {effective}.")
        # The dry run last: what the policy refuses never reaches the cluster's write path.
        preview = await preview_request(self.clusters, operation)
        return RequestDraft(
            operation=operation, action=action.strip(), by=by, via=via, risk=effective, stated_risk=risk,
            rule=rule, reason=reason, incident_id=incident_id, blast=blast,
            proposal=proposal, places=routed(defaults, origin), freeze=freeze, cluster=cluster, preview=preview,
            pin=pin_of(facts.observed) if facts is not None else None,
        )

    def _check_rate(self, uow: UnitOfWork, person: str) -> None:
        limit = self.policy.requests.max_per_person_per_minute
        now = self._clock.now()
        since = now - RATE_WINDOW
        made = uow.rate_events.count_since(person, "request", since)
        if made >= limit:
            oldest = uow.rate_events.oldest_since(person, "request", since)
            wait = RATE_WINDOW - (now - parse_at(oldest)) if oldest else RATE_WINDOW
            seconds = max(1, min(60, int(wait.total_seconds()) + 1))
            raise RateLimited(
                f"You made {made} requests in the last minute (the limit is {limit}); "
                f"wait {seconds} s and ask again.", retry_after_s=seconds,
            )

    def create(self, uow: UnitOfWork, draft: RequestDraft) -> ApprovalRequest:
        """Store a drafted request inside the caller's transaction (with its events, card and `RequestCreated`)."""
        if draft.by is not SYSTEM:
            self._check_rate(uow, draft.by.name)
            uow.rate_events.record(draft.by.name, "request", self._clock.now())
        created = approvals.new_request(
            request_id=uow.requests.next_id(), operation=draft.operation, action=draft.action,
            requested_by=draft.by, via=draft.via, at=self._clock.now(), risk=draft.risk,
            stated_risk=draft.stated_risk, rule=draft.rule, expire_after=self.policy.requests.expire_after,
            reason=draft.reason, incident_id=draft.incident_id, blast=draft.blast, proposal=draft.proposal,
            places=draft.places, freeze=draft.freeze, cluster=draft.cluster, pin=draft.pin,
        )
        created = with_preview(created, draft.preview)
        request = created.request
        return store_transition(uow, None, created, policy=self.policy, bus=self._bus,
                                first_post=lambda platform: first_post_mentions(
                                    who_can_sign(self.policy, request, platform), self.on_call, draft.rule,
                                    request, platform))

    def created(self, request: ApprovalRequest) -> None:
        """After the transaction that stored a request committed."""
        log.info("request.created", request_id=request.id, risk=str(request.risk), quorum=request.quorum,
                 requested_by=request.requested_by, via=request.requested_via)

    async def _inspect(self, operation: Operation) -> tuple[TargetFacts | None, BlastRadius]:
        try:
            facts = await self._cluster.inspect(operation)
        except ClusterError as exc:
            log.warning("request.blast_unavailable", error=exc.message)
            return None, BlastRadius(target_found=True, note=f"could not read the cluster ({exc.message})",
                                     downtime="unknown", data_impact="unknown", facts_unknown=True)
        return facts, assess(operation, facts)

    async def sign(self, request_id: RequestId, *, by: Person, via: str,
                   comment: str | None = None, confirmation: str | None = None) -> ApprovalRequest:
        def transition(request: ApprovalRequest, now: datetime) -> Transition:
            return approvals.sign(request, by=by, at=now, via=via, comment=comment, confirmation=confirmation)
        return await self._act(request_id, by, via, "sign", transition)

    async def reject(
        self, request_id: RequestId, *, by: Person, via: str, reason: str | None = None,
    ) -> ApprovalRequest:
        def transition(request: ApprovalRequest, now: datetime) -> Transition:
            return approvals.reject(request, by=by, at=now, via=via, reason=reason)
        return await self._act(request_id, by, via, "reject", transition)

    async def cancel(self, request_id: RequestId, *, by: Person, via: str) -> ApprovalRequest:
        def transition(request: ApprovalRequest, now: datetime) -> Transition:
            return approvals.cancel(request, by=by, at=now)
        return await self._act(request_id, by, via, "cancel", transition)

    async def _act(
        self, request_id: RequestId, by: Person, via: str, verb: str,
        transition: Callable[[ApprovalRequest, datetime], Transition],
    ) -> ApprovalRequest:
        request_id = as_request_id(request_id)

        def act(uow: UnitOfWork) -> tuple[ApprovalRequest, bool]:
            """Returns the request and whether it turned out to have expired before this action."""
            request = uow.requests.get(request_id, lock=True)
            if request is None:
                raise NotFound(f"There is no request {request_id}; `list` shows the pending ones.")
            now = self._clock.now()
            if request.status is RequestStatus.pending and approvals.is_overdue(request, now):
                # Expire it now (the sweep would soon) and let the caller explain why nothing happened.
                expired = approvals.expire(request, at=now)
                store_transition(uow, request, expired, policy=self.policy, bus=self._bus)
                return expired.request, True
            changed = transition(request, now)
            for signature in changed.request.signatures[len(request.signatures):]:
                uow.requests.add_signature(request.id, signature)
            store_transition(uow, request, changed, policy=self.policy, bus=self._bus)
            return changed.request, False

        try:
            result, expired_first = await self._store.write(act, urgent=True, quick=True)
        except Refusal as refusal:
            await self._record_refusal(request_id, by, via, verb, refusal)
            raise
        if expired_first:
            raise RequestExpired(
                f"{request_id} expired at {result.expires_at:%H:%M UTC} without reaching its quorum; "
                "ask for it again if it is still needed.", request_id,
            )
        if result.status is RequestStatus.approved:
            self._signals.execution.set()
            if result.approved_at is not None:
                self._metrics.observe("signoff_time_to_quorum_seconds",
                                      (result.approved_at - result.created_at).total_seconds(), QUORUM_BUCKETS)
            log.info("request.approved", request_id=request_id, signatures=result.signed)
        else:
            log.info("request.acted", request_id=request_id, action=verb, person=by.name,
                     status=str(result.status), signatures=result.signed)
        return result

    async def _record_refusal(self, request_id: str, by: Person, via: str, verb: str, refusal: Refusal) -> None:
        """Refusals go into the timeline in their own transaction: the attempt itself is history."""
        now = self._clock.now()

        def record(uow: UnitOfWork) -> None:
            request = uow.requests.get(request_id)
            if request is None:
                return
            # The person always gets their answer; a stream of refused clicks stops reaching the timeline
            # and the thread after a few a minute.
            if uow.rate_events.count_since(by.name, "refusal", now - RATE_WINDOW) >= MAX_REFUSALS_RECORDED:
                log.warning("refusal.not_recorded", request_id=request_id, person=by.name, refusal=refusal.code)
                return
            uow.rate_events.record(by.name, "refusal", now)
            uow.timeline.append([NewEvent(
                at=now, type=EventType.refused, status=str(request.status),
                title=f"refused {verb} by {by.name}: {refusal.code}", detail=refusal.message,
                actor=by.name, actor_role=_role(request, by), request_id=request.id,
                incident_id=request.incident_id,
            )])
            if isinstance(refusal, _THREAD_WORTHY):
                uow.outbox.add(thread_replies(
                    request, f"🚫 {by.name} tried to {verb} {request.id} via {via} and was refused: {refusal.message}",
                ))

        await self._store.write(record, urgent=True)
        self._metrics.inc("signoff_refusals_total", reason=refusal.code)
        log.info("request.refused", request_id=request_id, person=by.name, action=verb, code=refusal.code)

    async def get(self, request_id: RequestId) -> ApprovalRequest:
        request_id = as_request_id(request_id)
        request = await self._store.read(lambda uow: uow.requests.get(request_id), quick=True)
        if request is None:
            raise NotFound(f"There is no request {request_id}; `list` shows the pending ones.")
        return request

    async def pending(self) -> list[ApprovalRequest]:
        open_states = [RequestStatus.pending, RequestStatus.approved, RequestStatus.executing, RequestStatus.verifying]
        return await self._store.read(lambda uow: uow.requests.with_status(open_states))

    async def timeline(self, subject: Subject) -> list[TimelineEvent]:
        subject = as_subject(subject)
        if isinstance(subject, IncidentId):
            incident_id = subject
            return await self._store.read(lambda uow: uow.timeline.for_incident(incident_id))
        request_id = subject
        return await self._store.read(lambda uow: uow.timeline.for_request(request_id))

    async def key_for_message(self, platform: str, message_or_thread_id: str) -> AnyId | None:
        """Which request (R-…) or playbook (PB-…) a chat message or thread belongs to, as its typed id."""
        key = await self._store.read(lambda uow: uow.outbox.key_for_message(platform, message_or_thread_id))
        return stored_key(key)

    async def request_thread(self, request_id: RequestId, text: str, place: Place | None = None) -> None:
        """Post `text` into a request's thread (on one platform, or on all of them)."""
        def post(uow: UnitOfWork) -> None:
            request = uow.requests.get(request_id)
            if request is None:
                raise NotFound(f"There is no request {request_id}.")
            uow.outbox.add(thread_replies(request, text, [place] if place is not None else None))

        await self._store.write(post)


def _role(request: ApprovalRequest, by: Person) -> str:
    if by.name == request.requested_by:
        return "requester"
    return "approver" if request.sign_rule.admits(by) else "outsider"
