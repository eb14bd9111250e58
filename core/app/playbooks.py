"""Playbook bookkeeping: extraction from a good fix, people's votes, and the counts of each playbook's use.

A good fix on a resolved incident becomes a playbook (at the policy's `auto_approve_score`: approved at
once; from its `extract_min_score`: offered in the thread for reaction votes; see `PlaybookRules`).
A playbook whose proposals keep failing is suspended. Every step is in the timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog

from core.app.alert_clusters import per_cluster
from core.app.incident_notes import announce, last_fix
from core.app.messagebus import RequestCreated, RequestFinished
from core.app.notify import thread_replies
from core.chat import learning_texts as texts
from core.domain import playbooks as pb
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.events import EventType, NewEvent
from core.domain.ids import PlaybookId, as_playbook_id
from core.domain.incidents import Incident
from core.domain.playbooks import Playbook, PlaybookStatus
from core.domain.policy import Person, PlaybookRules, Policy
from core.domain.similarity import workload_labels
from core.errors import AlreadySigned, NotFound
from core.ports import Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)


class PlaybookService:
    def __init__(self, *, store: Store, policy: Policy, clock: Clock, places: Mapping[str, str]) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._places = places  # the default channels, for announcements with no request thread to go to

    @property
    def rules(self) -> PlaybookRules:
        return self._policy.playbooks

    async def all(self) -> list[Playbook]:
        return await self._store.read(lambda uow: uow.playbooks.all())

    # --- handlers of other services' events, inside their transactions -------------------------

    def on_request_created(self, uow: UnitOfWork, event: RequestCreated) -> None:
        proposal = event.request.proposal
        if proposal is not None and proposal.playbook_id:
            self._count(uow, proposal.playbook_id, proposed=1)

    def on_request_finished(self, uow: UnitOfWork, event: RequestFinished) -> None:
        request = event.request
        proposal = request.proposal
        if proposal is None or not proposal.playbook_id:
            return
        # A failure (a failed verification above all) counts against the playbook's use.
        self._count(uow, proposal.playbook_id, executed=1, succeeded=int(request.status is RequestStatus.succeeded),
                    failed=int(request.status is RequestStatus.failed))
        self._suspend_if_failing(uow, proposal.playbook_id, request)

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

    @staticmethod
    def _count(uow: UnitOfWork, playbook_id: str, **counts: int) -> None:
        playbook = uow.playbooks.get(playbook_id, lock=True)
        if playbook is not None:
            uow.playbooks.update(pb.counted(playbook, **counts))

    # --- extraction --------------------------------------------------------------------------------

    def maybe_extract(self, uow: UnitOfWork, incident: Incident, now: datetime) -> None:
        """A good fix on a finished incident becomes a playbook, unless an identical one exists."""
        rules = self._policy.playbooks
        if not pb.worth_extracting(incident, rules):
            return
        source = last_fix(uow, incident)
        if source is None:
            return

        def extract_as(playbook_id: str) -> pb.PlaybookChange:
            return pb.extract(
                playbook_id=playbook_id, incident_id=incident.id, alert_name=incident.alert_name or incident.title,
                trigger_labels=workload_labels(per_cluster(incident.labels, self._policy)), symptom=incident.symptom,
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
        announce(uow, incident, texts.playbook_learned(playbook, incident.id, rules), self._places, anchor_as=anchor)
        log.info("playbook.extracted", playbook_id=playbook.id, incident_id=incident.id,
                 status=str(playbook.status))

    # --- people --------------------------------------------------------------------------------------

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
                    announce(uow, incident, texts.playbook_decided(change.playbook), self._places)
            return change.playbook

        playbook = await self._store.write(vote)
        log.info("playbook.voted", playbook_id=playbook_id, person=by.name, approve=approve,
                 status=str(playbook.status))
        return playbook
