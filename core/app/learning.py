"""Incidents in, playbooks out: the part of signoff that learns.

An Alertmanager alert opens an incident and gets a proposal from the decision manager; a
person rates the fix; a good fix on a resolved incident becomes a playbook (at the policy's
`auto_approve_score`: approved at once; from its `extract_min_score`: offered in the thread for
reaction votes; see `PlaybookRules`); the next similar
alert is met with the playbook's proposal. Every step is in the timeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import structlog
from pydantic import BaseModel, ConfigDict

from core.app.decisions import Decision, DecisionManager
from core.app.notify import thread_replies
from core.app.outbox import MessageKind, NewMessage
from core.app.service import SYSTEM, ApprovalService, RequestDraft
from core.app.signals import Signals
from core.chat import learning_texts as texts
from core.domain import incidents as inc
from core.domain import playbooks as pb
from core.domain.alerts import Alert, AlertStatus
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.events import EventType, NewEvent
from core.domain.ids import IncidentId, PlaybookId, as_incident_id, as_playbook_id
from core.domain.incidents import Incident
from core.domain.playbooks import Playbook, PlaybookStatus
from core.domain.policy import Person, PlaybookRules, Policy
from core.domain.similarity import workload_labels
from core.errors import AlreadySigned, NotAuthorized, NotFound, SignoffError
from core.ports import Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)

ALERT_CONCURRENCY = 8
ALERTMANAGER = "alertmanager"


class AlertOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    fingerprint: str
    status: AlertStatus
    incident_id: str | None = None
    request_id: str | None = None
    track: str | None = None
    duplicate: bool = False


class IncidentService:
    def __init__(
        self, *, store: Store, policy: Policy, clock: Clock, signals: Signals, approvals: ApprovalService,
        decisions: DecisionManager,
    ) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._signals = signals
        self._approvals = approvals
        self._decisions = decisions

    # --- hooks that run inside other services' transactions -------------------------------

    def on_request_created(self, uow: UnitOfWork, request: ApprovalRequest) -> None:
        """Called in the transaction that creates a request (see ApprovalService.on_created)."""
        now = request.created_at
        if request.incident_id:
            incident = uow.incidents.get(request.incident_id, lock=True)
            if incident is None:
                title = request.reason or request.operation.command()
                opened = inc.open_incident(incident_id=request.incident_id, title=title, at=now, source="request",
                                           actor=request.requested_by)
                uow.incidents.add(opened.incident)
                uow.timeline.append(opened.events)
                incident = opened.incident
            linked = inc.link_request(incident, request.id, now)
            if linked.events:
                uow.incidents.update(linked.incident)
                uow.timeline.append(linked.events)
        proposal = request.proposal
        if proposal is not None:
            uow.timeline.append([NewEvent(
                at=now, type=EventType.proposed, status=request.status.value,
                title=f"{request.id} proposed by the {proposal.track} track",
                detail=proposal.rationale, request_id=request.id, incident_id=request.incident_id,
            )])
            if proposal.playbook_id:
                self._count(uow, proposal.playbook_id, proposed=1)

    def on_request_finished(self, uow: UnitOfWork, request: ApprovalRequest) -> None:
        """Called in the transaction that records an outcome (see ExecutionService.on_finished)."""
        proposal = request.proposal
        succeeded = request.status is RequestStatus.succeeded
        if proposal is not None and proposal.playbook_id:
            # A failure (a failed verification above all) counts against the playbook's use.
            self._count(uow, proposal.playbook_id, executed=1, succeeded=int(succeeded),
                        failed=int(request.status is RequestStatus.failed))
            self._suspend_if_failing(uow, proposal.playbook_id, request)
        if not succeeded or not request.incident_id:
            return
        incident = uow.incidents.get(request.incident_id, lock=True)
        if incident is None:
            return
        if incident.effectiveness is not None:
            self._maybe_extract(uow, incident, self._clock.now())
        else:
            uow.outbox.add(self._rating_prompt(request, incident))

    def _suspend_if_failing(self, uow: UnitOfWork, playbook_id: str, request: ApprovalRequest) -> None:
        playbook = uow.playbooks.get(playbook_id, lock=True)
        if playbook is None:
            return
        change = pb.suspend_if_failing(playbook, at=self._clock.now(), request_id=request.id)
        if change.events:
            uow.playbooks.update(change.playbook)
            uow.timeline.append(change.events)
            uow.outbox.add(thread_replies(request, texts.playbook_suspended(change.playbook, request.id)))
            log.warning("playbook.suspended", playbook_id=playbook_id, request_id=request.id)

    def _count(self, uow: UnitOfWork, playbook_id: str, **counts: int) -> None:
        playbook = uow.playbooks.get(playbook_id, lock=True)
        if playbook is not None:
            uow.playbooks.update(pb.counted(playbook, **counts))

    def _rating_prompt(self, request: ApprovalRequest, incident: Incident,
                       evidence: str | None = None) -> list[NewMessage]:
        card = texts.rating_card(request.id, incident.id, self._policy.playbooks, evidence=evidence)
        return [
            NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.thread, key=request.id, card=card,
                       text=card.title)
            for p in request.places
        ]

    # --- alerts ------------------------------------------------------------------------------

    async def ingest_alerts(self, alerts: Sequence[Alert]) -> list[AlertOutcome]:
        """Every alert of a notification, several at a time (most of the time goes to cluster reads)."""
        outcomes: list[AlertOutcome | None] = [None] * len(alerts)
        gate = asyncio.Semaphore(ALERT_CONCURRENCY)

        async def one(index: int, alert: Alert) -> None:
            async with gate:
                if alert.status is AlertStatus.resolved:
                    outcomes[index] = await self._alert_resolved(alert)
                else:
                    outcomes[index] = await self._alert_firing(alert)

        async with asyncio.TaskGroup() as group:
            for index, alert in enumerate(alerts):
                group.create_task(one(index, alert))
        return [outcome for outcome in outcomes if outcome is not None]

    async def _alert_firing(self, alert: Alert) -> AlertOutcome:
        labels, annotations, alert_name, fingerprint = alert.labels, alert.annotations, alert.name, alert.fingerprint
        # Alertmanager repeats a firing group every repeat_interval: a cheap read settles those.
        known, playbooks = await self._store.read(
            lambda uow: (uow.incidents.by_fingerprint(alert.key), uow.playbooks.all()))
        if known is not None:
            return AlertOutcome(fingerprint=fingerprint, status=AlertStatus.firing, incident_id=known.id,
                                duplicate=True)
        now = self._clock.now()
        where = inc.subject_of(labels) or "the cluster"
        summary = annotations.get("summary")
        draft_incident = inc.open_incident(
            incident_id="INC-?", title=f"{alert_name} on {where}" + (f": {summary}" if summary else ""), at=now,
            source=ALERTMANAGER, alert_name=alert_name, labels=labels,
            symptom=annotations.get("description") or summary or "", fingerprint=alert.key, actor=ALERTMANAGER,
        ).incident
        decision = await self._decisions.decide(draft_incident, playbooks)
        draft = await self._draft_request(draft_incident, decision)

        def open_and_propose(uow: UnitOfWork) -> tuple[Incident, ApprovalRequest | None, bool]:
            """The incident, its proposal (or the question to the humans) and their events: one transaction."""
            existing = uow.incidents.by_fingerprint(alert.key)
            if existing is not None:
                return existing, None, False
            opened = inc.open_incident(
                incident_id=uow.incidents.next_id(), title=draft_incident.title, at=now, source=ALERTMANAGER,
                alert_name=alert_name, labels=labels, symptom=draft_incident.symptom, fingerprint=alert.key,
                actor=ALERTMANAGER,
            )
            uow.incidents.add(opened.incident)
            uow.timeline.append(opened.events)
            if draft is None:
                self._ask_humans(uow, opened.incident, decision, now)
                return opened.incident, None, True
            request = self._approvals.create(uow, replace(draft, incident_id=IncidentId(opened.incident.id)))
            return opened.incident, request, True

        incident, request, created = await self._store.write(open_and_propose)
        if not created:
            return AlertOutcome(fingerprint=fingerprint, status=AlertStatus.firing, incident_id=incident.id,
                                duplicate=True)
        if request is not None:
            self._approvals.created(request)
        else:
            self._signals.outbox.set()
        log.info("alert.incident_opened", incident_id=incident.id, alert=alert_name, track=decision.proposal.track,
                 request_id=request.id if request else None)
        return AlertOutcome(fingerprint=fingerprint, status=AlertStatus.firing, incident_id=incident.id,
                            request_id=request.id if request else None,
                            track=decision.proposal.track if request else "none")

    async def _draft_request(self, incident: Incident, decision: Decision) -> RequestDraft | None:
        if decision.action is None:
            return None
        reason = f"{incident.alert_name} on {incident.subject}: {incident.symptom or incident.title}"[:480]
        try:
            return await self._approvals.draft(
                decision.action, by=SYSTEM, via=ALERTMANAGER, risk=decision.risk, reason=reason,
                proposal=decision.proposal,
            )
        except SignoffError as exc:
            log.warning("alert.proposal_refused", incident_id=incident.id, error=exc.message)
            return None

    def _ask_humans(self, uow: UnitOfWork, incident: Incident, decision: Decision, now: datetime) -> None:
        text = texts.no_proposal(incident, decision.proposal.rationale)
        uow.timeline.append([NewEvent(
            at=now, type=EventType.proposed, status=incident.status.value,
            title="no proposal: asking the humans", detail=decision.proposal.rationale, incident_id=incident.id,
        )])
        uow.outbox.add([
            NewMessage(platform=platform, channel=channel, kind=MessageKind.channel, key=incident.id, text=text)
            for platform, channel in self._approvals.default_places.items()
        ])

    async def _alert_resolved(self, alert: Alert) -> AlertOutcome:
        now = self._clock.now()

        def resolved(uow: UnitOfWork) -> Incident | None:
            incident = uow.incidents.by_fingerprint(alert.key)
            if incident is None:
                return None
            change = inc.alert_resolved(incident, at=now)
            if change.events:
                uow.incidents.update(change.incident)
                uow.timeline.append(change.events)
                verified = self._last_fix(uow, incident)
                if verified is not None and verified.verification is not None and verified.outcome is not None:
                    # Evidence for the rating: the alert cleared this long after the fix was verified.
                    evidence = texts.resolved_after(incident.id, verified.id, now - verified.outcome.finished_at)
                    self._announce(uow, change.incident, evidence)
                    if incident.effectiveness is None:
                        uow.outbox.add(self._rating_prompt(verified, incident, evidence=evidence))
                else:
                    self._announce(uow, change.incident, texts.alert_resolved(incident))
            return change.incident

        incident = await self._store.write(resolved)
        self._signals.outbox.set()
        return AlertOutcome(fingerprint=alert.fingerprint, status=AlertStatus.resolved,
                            incident_id=incident.id if incident else None)

    def _announce(self, uow: UnitOfWork, incident: Incident, text: str, *, anchor_as: str | None = None) -> None:
        """Into the thread of the incident's latest request; else into the default channels."""
        for request_id in reversed(incident.request_ids):
            request = uow.requests.get(request_id)
            if request is not None and request.places:
                uow.outbox.add([m.model_copy(update={"anchor_as": anchor_as})
                                for m in thread_replies(request, text)])
                return
        uow.outbox.add([
            NewMessage(platform=platform, channel=channel, kind=MessageKind.channel, key=incident.id, text=text,
                       anchor_as=anchor_as)
            for platform, channel in self._approvals.default_places.items()
        ])

    # --- people ------------------------------------------------------------------------------

    async def resolve(self, incident_id: IncidentId, *, by: Person, score: int, via: str) -> Incident:
        if not self._policy.is_responder(by):
            raise NotAuthorized(f"Only approvers may resolve incidents; {by.name} is not one of them.", None)
        now = self._clock.now()
        incident_id = as_incident_id(incident_id)

        def resolve(uow: UnitOfWork) -> Incident:
            incident = uow.incidents.get(incident_id, lock=True)
            if incident is None:
                raise NotFound(f"There is no incident {incident_id}.")
            change = inc.resolve(incident, by=by.name, score=score, at=now, via=via)
            uow.incidents.update(change.incident)
            uow.timeline.append(change.events)
            self._announce(uow, change.incident, texts.incident_resolved(incident_id, by.name, score))
            self._maybe_extract(uow, change.incident, now)
            return change.incident

        incident = await self._store.write(resolve)
        self._signals.outbox.set()
        log.info("incident.resolved", incident_id=incident_id, score=score, person=by.name)
        return incident

    def _maybe_extract(self, uow: UnitOfWork, incident: Incident, now: datetime) -> None:
        """A good fix on a finished incident becomes a playbook, unless an identical one exists."""
        rules = self._policy.playbooks
        if not pb.worth_extracting(incident, rules):
            return
        source = self._last_fix(uow, incident)
        if source is None:
            return

        def extract_as(playbook_id: str) -> pb.PlaybookChange:
            return pb.extract(
                playbook_id=playbook_id, incident_id=incident.id, alert_name=incident.alert_name or incident.title,
                trigger_labels=workload_labels(incident.labels), symptom=incident.symptom,
                command=source.operation.command(), alert_labels=incident.labels, request_id=source.id,
                effectiveness=incident.effectiveness or 0,
                risk=source.stated_risk.value if source.stated_risk else None, at=now, rules=rules,
            )

        twin = uow.playbooks.find_identical(extract_as("PB-?").playbook)
        if twin is not None:
            uow.timeline.append([NewEvent(
                at=now, type=EventType.playbook_extracted, status=twin.status.value,
                title=f"not extracted again: identical to {twin.id}", incident_id=incident.id, request_id=source.id,
            )])
            return
        change = extract_as(uow.playbooks.next_id())
        uow.playbooks.add(change.playbook)
        uow.timeline.append(change.events)
        playbook = change.playbook
        # A proposed playbook's announcement is the message people react to, so it is anchored as the playbook.
        anchor = None if playbook.status is PlaybookStatus.approved else playbook.id
        self._announce(uow, incident, texts.playbook_learned(playbook, incident.id, rules), anchor_as=anchor)
        log.info("playbook.extracted", playbook_id=playbook.id, incident_id=incident.id,
                 status=str(playbook.status))

    @staticmethod
    def _last_fix(uow: UnitOfWork, incident: Incident) -> ApprovalRequest | None:
        """The incident's latest request that succeeded: the fix a playbook is learned from."""
        for request_id in reversed(incident.request_ids):
            request = uow.requests.get(request_id)
            if request is not None and request.status is RequestStatus.succeeded:
                return request
        return None

    async def vote(self, playbook_id: PlaybookId, *, approve: bool, by: Person, via: str) -> Playbook:
        now = self._clock.now()
        playbook_id = as_playbook_id(playbook_id)

        def vote(uow: UnitOfWork) -> Playbook:
            playbook = uow.playbooks.get(playbook_id, lock=True)
            if playbook is None:
                raise NotFound(f"There is no playbook {playbook_id}; `playbooks` lists them.")
            change = pb.vote(playbook, by=by, approve=approve, at=now, via=via, rule=self._policy.playbooks.sign_rule)
            if not uow.playbooks.add_vote(playbook.id, change.playbook.votes[-1]):
                raise AlreadySigned(f"You already voted on {playbook.id}; one person, one vote.", None)
            uow.playbooks.update(change.playbook)
            uow.timeline.append(change.events)
            if change.playbook.status is not PlaybookStatus.proposed:
                incident = uow.incidents.get(playbook.source_incident)
                if incident is not None:
                    self._announce(uow, incident, texts.playbook_decided(change.playbook))
            return change.playbook

        playbook = await self._store.write(vote)
        self._signals.outbox.set()
        log.info("playbook.voted", playbook_id=playbook_id, person=by.name, approve=approve,
                 status=str(playbook.status))
        return playbook

    @property
    def rules(self) -> PlaybookRules:
        return self._policy.playbooks

    async def playbooks(self) -> list[Playbook]:
        return await self._store.read(lambda uow: uow.playbooks.all())

    async def incident(self, incident_id: IncidentId) -> Incident:
        incident_id = as_incident_id(incident_id)
        found = await self._store.read(lambda uow: uow.incidents.get(incident_id))
        if found is None:
            raise NotFound(f"There is no incident {incident_id}.")
        return found

