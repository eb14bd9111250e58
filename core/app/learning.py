"""Incidents in, playbooks out: the part of signoff that learns.

An Alertmanager alert opens an incident and gets a proposal from the decision manager; a
person rates the fix; a good fix on a resolved incident becomes a playbook (at the policy's
`auto_approve_score`: approved at once; from its `extract_min_score`: offered in the thread for
reaction votes; see `PlaybookRules`); the next similar
alert is met with the playbook's proposal. Every step is in the timeline.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import structlog

from core.app.alert_outcomes import AlertOutcome, Filed, Prepared, failed
from core.app.decisions import Decision, DecisionManager
from core.app.notify import card_updates, thread_replies
from core.app.service import SYSTEM, ApprovalService, RequestDraft
from core.app.signals import Signals
from core.chat import learning_texts as texts
from core.chat.messages import MessageKind, NewMessage
from core.domain import incidents as inc
from core.domain import playbooks as pb
from core.domain.alerts import Alert, AlertStatus
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.correlation import correlation_key, workload_of
from core.domain.events import EventType, NewEvent
from core.domain.ids import IncidentId, PlaybookId, as_incident_id, as_playbook_id
from core.domain.incidents import Incident
from core.domain.playbooks import Playbook, PlaybookStatus
from core.domain.policy import Person, PlaybookRules, Policy
from core.domain.similarity import workload_labels
from core.errors import AlreadySigned, ConcurrentUpdate, NotAuthorized, NotFound, SignoffError
from core.ports import Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)


ALERT_CONCURRENCY = 8
ALERTMANAGER = "alertmanager"


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
        """Every alert of a notification: firing ones grouped by correlation key.

        A storm of alerts about one workload is one incident (docs/incidents.md, "Correlation"); the
        cluster reads that find each pod's owner run several at a time.
        """
        outcomes: list[AlertOutcome | None] = [None] * len(alerts)
        gate = asyncio.Semaphore(ALERT_CONCURRENCY)
        firing = [(index, alert) for index, alert in enumerate(alerts) if alert.status is AlertStatus.firing]
        owners: list[str | None] = [None] * len(firing)

        async def owner(position: int, alert: Alert) -> None:
            async with gate:
                try:
                    owners[position] = await self._decisions.owner_of(alert.name, alert.labels)
                except Exception:  # the owner is a hint; without it the labels decide the workload
                    log.exception("alert.owner_failed", fingerprint=alert.fingerprint)

        async with asyncio.TaskGroup() as group:
            for position, (_, alert) in enumerate(firing):
                group.create_task(owner(position, alert))
        groups: dict[str, list[tuple[int, Alert]]] = {}
        workloads: dict[str, str | None] = {}
        for (index, alert), found in zip(firing, owners, strict=True):
            workload = workload_of(alert.labels, found)
            key = correlation_key(alert.name, alert.labels, workload)
            groups.setdefault(key, []).append((index, alert))
            workloads[key] = workload

        # Most of a storm joins incidents that are open already: those groups go in one transaction.
        # (In key order, so that two replicas lock the same incidents in the same order.)
        open_keys = await self._store.read(
            lambda uow: [key for key in sorted(groups) if uow.incidents.by_open_key(key) is not None])
        joined: dict[str, Filed | None] = {}
        if open_keys:
            try:
                joined = await self._store.write(lambda uow: {
                    key: self._file(uow, key=key, workload=workloads[key], items=groups[key], prepared=None)
                    for key in open_keys})
            except Exception:  # the groups are then filed one by one below, each failing alone
                log.exception("alert.join_failed", groups=len(open_keys))
        for key, result in joined.items():
            if result is not None:
                for index, outcome in self._filed(key, groups[key], result, None):
                    outcomes[index] = outcome

        async def filed(key: str, items: list[tuple[int, Alert]]) -> None:
            async with gate:
                try:
                    for index, outcome in await self._file_group(key, workloads[key], items):
                        outcomes[index] = outcome
                except Exception:
                    # One group fails alone; the caller asks Alertmanager to send the notification again.
                    log.exception("alert.failed", key=key, alerts=len(items))
                    for index, alert in items:
                        outcomes[index] = failed(alert)

        async with asyncio.TaskGroup() as group:
            for key, items in groups.items():
                if joined.get(key) is None:  # a new problem, or its incident resolved meanwhile
                    group.create_task(filed(key, items))
        resolved = [(index, alert) for index, alert in enumerate(alerts) if alert.status is AlertStatus.resolved]
        if resolved:
            try:
                for index, outcome in await self._alerts_resolved(resolved):
                    outcomes[index] = outcome
            except Exception:
                log.exception("alert.resolve_failed", alerts=len(resolved))
                for index, alert in resolved:
                    outcomes[index] = failed(alert)
        return [outcome for outcome in outcomes if outcome is not None]

    async def _file_group(self, key: str, workload: str | None,
                          items: list[tuple[int, Alert]]) -> list[tuple[int, AlertOutcome]]:
        """Alerts with one correlation key: they join the open incident, or open one with one proposal."""
        first = items[0][1]
        # Alertmanager repeats a firing group every repeat_interval, and most of a storm joins an incident
        # that is already open: a cheap read settles both before any decision is made.
        known, open_incident = await self._store.read(
            lambda uow: (uow.incidents.alert_incident(first.key), uow.incidents.by_open_key(key)))
        prepared: Prepared | None = None
        if open_incident is None and (known is None or len(items) > 1):
            prepared = await self._prepare(first, key, workload)
        for _ in range(3):
            result = await self._store.write(functools.partial(self._file, key=key, workload=workload, items=items,
                                                               prepared=prepared))
            if result is not None:
                break
            prepared = await self._prepare(first, key, workload)  # the open incident resolved meanwhile
        else:
            raise ConcurrentUpdate(f"the incident for {first.name} kept changing; Alertmanager will send it again")
        return self._filed(key, items, result, prepared)

    def _filed(self, key: str, items: list[tuple[int, Alert]], result: Filed,
               prepared: Prepared | None) -> list[tuple[int, AlertOutcome]]:
        """After the transaction: wake the outbox, and say what became of each alert."""
        incident, request, fresh, created = result
        if request is not None:
            self._approvals.created(request)
        elif fresh:
            self._signals.outbox.set()
        opener = next(iter(fresh)) if created else None
        outcomes: list[tuple[int, AlertOutcome]] = []
        for index, alert in items:
            proposed = alert.key == opener
            outcomes.append((index, AlertOutcome(
                fingerprint=alert.fingerprint, status=AlertStatus.firing,
                incident_id=fresh.get(alert.key, incident.id),
                request_id=request.id if proposed and request is not None else None,
                track=(prepared.decision.proposal.track if request is not None else "none")
                if proposed and prepared is not None else None,
                duplicate=alert.key not in fresh,
            )))
        if fresh:
            log.info("alert.filed", incident_id=incident.id, key=key, alerts=len(fresh),
                     total=incident.alert_count, request_id=request.id if request else None)
        return outcomes

    def _file(self, uow: UnitOfWork, *, key: str, workload: str | None, items: list[tuple[int, Alert]],
              prepared: Prepared | None) -> Filed | None:
        """One transaction: the group's new alerts join the open incident or open it; None: decide first."""
        fresh: dict[str, Alert] = {}
        known_incident: str | None = None
        for _, alert in items:
            if alert.key in fresh:
                continue
            seen = uow.incidents.alert_incident(alert.key)
            if seen is None:
                fresh[alert.key] = alert
            elif known_incident is None:
                known_incident = seen[0]
        now = self._clock.now()
        incident = uow.incidents.by_open_key(key, lock=True)
        if not fresh:
            found = uow.incidents.get(known_incident) if known_incident else incident
            if found is None:
                return None
            return Filed(found, None, {}, False)
        pairs = [(alert.key, alert.labels.get("pod")) for alert in fresh.values()]
        if incident is not None:
            new_pods = uow.incidents.add_alerts(incident.id, pairs)
            change = inc.alerts_joined(incident, alerts=len(fresh), new_pods=new_pods, at=now)
            uow.incidents.update(change.incident)
            uow.timeline.append(change.events)
            self._refresh_cards(uow, change.incident)
            return Filed(change.incident, None, dict.fromkeys(fresh, incident.id), False)
        if prepared is None:
            return None
        draft_incident = prepared.incident
        pods = len({pod for _, pod in pairs if pod})
        opened = inc.open_incident(
            incident_id=uow.incidents.next_id(), title=draft_incident.title, at=now, source=ALERTMANAGER,
            alert_name=draft_incident.alert_name, labels=draft_incident.labels, symptom=draft_incident.symptom,
            fingerprint=next(iter(fresh)), actor=ALERTMANAGER, correlation_key=key, workload=workload,
            alerts=len(fresh), pods=pods,
        )
        uow.incidents.add(opened.incident)
        uow.incidents.add_alerts(opened.incident.id, pairs)
        uow.timeline.append(opened.events)
        if prepared.draft is None:
            self._ask_humans(uow, opened.incident, prepared.decision, now)
            return Filed(opened.incident, None, dict.fromkeys(fresh, opened.incident.id), True)
        request = self._approvals.create(uow, replace(prepared.draft, incident_id=IncidentId(opened.incident.id)))
        return Filed(opened.incident, request, dict.fromkeys(fresh, opened.incident.id), True)

    def _refresh_cards(self, uow: UnitOfWork, incident: Incident) -> None:
        """The incident's cards show its alert count: one pending edit per card, coalesced by the dispatcher."""
        for request_id in incident.request_ids:
            request = uow.requests.get(request_id)
            if request is None or request.status.terminal:
                continue
            uow.outbox.add([message for message in card_updates(request)
                            if not uow.outbox.pending_updates(message.platform, request.id)])

    async def _prepare(self, alert: Alert, key: str, workload: str | None) -> Prepared:
        """A new incident's proposal, decided outside any transaction (cluster reads, the advisor)."""
        labels, annotations = alert.labels, alert.annotations
        playbooks = await self._store.read(lambda uow: uow.playbooks.all())
        where = workload or inc.subject_of(labels) or "the cluster"
        summary = annotations.get("summary")
        draft_incident = inc.open_incident(
            incident_id="INC-?", title=f"{alert.name} on {where}" + (f": {summary}" if summary else ""),
            at=self._clock.now(), source=ALERTMANAGER, alert_name=alert.name, labels=labels,
            symptom=annotations.get("description") or summary or "", fingerprint=alert.key, actor=ALERTMANAGER,
            correlation_key=key, workload=workload,
        ).incident
        decision = await self._decisions.decide(draft_incident, playbooks)
        draft = await self._draft_request(draft_incident, decision)
        return Prepared(draft_incident, decision, draft)

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

    async def _alerts_resolved(self, resolved: list[tuple[int, Alert]]) -> list[tuple[int, AlertOutcome]]:
        """Alerts that cleared; an incident resolves once none of its alerts still fires."""
        now = self._clock.now()

        def clear(uow: UnitOfWork) -> dict[str, str]:
            incident_of = {alert.key: found[0] for _, alert in resolved
                           if (found := uow.incidents.alert_incident(alert.key)) is not None}
            for incident_id, count in uow.incidents.alerts_resolved([alert.key for _, alert in resolved]).items():
                incident = uow.incidents.get(incident_id, lock=True)
                if incident is None:
                    continue
                change = inc.alert_resolved(incident, at=now, alerts=count)
                if change.incident is not incident:
                    uow.incidents.update(change.incident)
                if not change.events:
                    self._refresh_cards(uow, change.incident)
                    continue
                uow.timeline.append(change.events)
                verified = self._last_fix(uow, incident)
                if verified is not None and verified.verification is not None and verified.outcome is not None:
                    # Evidence for the rating: the alert cleared this long after the fix was verified.
                    evidence = texts.resolved_after(incident.id, verified.id, now - verified.outcome.finished_at)
                    self._announce(uow, change.incident, evidence)
                    if incident.effectiveness is None:
                        uow.outbox.add(self._rating_prompt(verified, incident, evidence=evidence))
                else:
                    self._announce(uow, change.incident, texts.alert_resolved(change.incident))
            return incident_of

        incident_of = await self._store.write(clear)
        self._signals.outbox.set()
        return [(index, AlertOutcome(fingerprint=alert.fingerprint, status=AlertStatus.resolved,
                                     incident_id=incident_of.get(alert.key))) for index, alert in resolved]

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

    async def open_incidents(self, limit: int = 200) -> list[Incident]:
        return await self._store.read(lambda uow: uow.incidents.list_open(limit))

    async def incident(self, incident_id: IncidentId) -> Incident:
        incident_id = as_incident_id(incident_id)
        found = await self._store.read(lambda uow: uow.incidents.get(incident_id))
        if found is None:
            raise NotFound(f"There is no incident {incident_id}.")
        return found

