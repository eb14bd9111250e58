"""Alerts in: Alertmanager's alerts join the open incident about the same problem, or open one with a proposal.

A storm of alerts about one workload is one incident (docs/incidents.md, "Correlation"). A new incident
gets its proposal from the decision manager (an approved playbook, the LLM advisor, the expert rules),
as an ordinary approval request; when its alerts all resolve, the incident resolves and people are asked
to rate the fix that ran. Every step is in the timeline.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import structlog

from core.app.alert_clusters import cluster_of, elsewhere, per_cluster
from core.app.alert_outcomes import AlertOutcome, Filed, Prepared, failed
from core.app.decisions import Decision, DecisionManager
from core.app.incident_notes import announce, last_fix, rating_prompt
from core.app.notify import card_updates
from core.app.self_resolved import cancel_pending, resolved_without_a_fix
from core.app.service import SYSTEM, ApprovalService, RequestDraft
from core.chat import learning_texts as texts
from core.chat.messages import MessageKind, NewMessage
from core.domain import incidents as inc
from core.domain.alerts import Alert, AlertStatus
from core.domain.correlation import correlation_key, workload_of
from core.domain.events import EventType, NewEvent
from core.domain.ids import IncidentId
from core.domain.incidents import Incident
from core.domain.policy import Policy
from core.errors import ConcurrentUpdate, SignoffError
from core.ports import Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)


ALERT_CONCURRENCY = 8
ALERTMANAGER = "alertmanager"


class AlertIntake:
    def __init__(
        self, *, store: Store, policy: Policy, clock: Clock, approvals: ApprovalService, decisions: DecisionManager,
    ) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._approvals = approvals
        self._decisions = decisions

    async def ingest_alerts(self, alerts: Sequence[Alert]) -> list[AlertOutcome]:
        """Every alert of a notification: firing ones grouped by correlation key.

        A storm of alerts about one workload is one incident (docs/incidents.md, "Correlation"); the
        cluster reads that find each pod's owner run several at a time.
        """
        outcomes: list[AlertOutcome | None] = list(elsewhere(alerts, self._policy))  # an unknown cluster
        gate = asyncio.Semaphore(ALERT_CONCURRENCY)
        firing = [(index, alert) for index, alert in enumerate(alerts)
                  if alert.status is AlertStatus.firing and outcomes[index] is None]
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
            key = correlation_key(alert.name, per_cluster(alert.labels, self._policy), workload)
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
        """After the transaction: say what became of each alert."""
        incident, request, fresh, created = result
        if request is not None:
            self._approvals.created(request)
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
                proposal=decision.proposal, cluster=cluster_of(incident.labels, self._policy),
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
                verified = last_fix(uow, incident)
                if verified is not None and verified.verification is not None and verified.outcome is not None:
                    # Evidence for the rating: the alert cleared this long after the fix was verified.
                    evidence = texts.resolved_after(incident.id, verified.id, now - verified.outcome.finished_at)
                    announce(uow, change.incident, evidence, self._approvals.default_places)
                    if incident.effectiveness is None:
                        uow.outbox.add(rating_prompt(verified, incident, self._policy.playbooks, evidence=evidence))
                else:  # no fix by signoff succeeded: nothing to rate, and an unsigned proposal is moot
                    cancelled, kept = cancel_pending(uow, change.incident, self._policy, now)
                    announce(uow, change.incident, resolved_without_a_fix(change.incident, cancelled, kept),
                             self._approvals.default_places)
            return incident_of

        incident_of = await self._store.write(clear)
        return [(index, AlertOutcome(fingerprint=alert.fingerprint, status=AlertStatus.resolved,
                                     incident_id=incident_of.get(alert.key))) for index, alert in resolved]
