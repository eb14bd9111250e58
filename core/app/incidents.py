"""Incidents: opened by a request that names one (alerts open theirs in `core.app.alert_intake`), linked to
their requests, rated by people, and asked to be rated once a fix ran.

A good fix on a rated incident is handed to the playbooks (`core.app.playbooks`). Every step is in the
timeline.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from core.app.incident_notes import announce, rating_prompt
from core.app.messagebus import RequestCreated, RequestFinished
from core.app.playbooks import PlaybookService
from core.chat import learning_texts as texts
from core.domain import incidents as inc
from core.domain.approvals import RequestStatus
from core.domain.events import EventType, NewEvent
from core.domain.ids import IncidentId, as_incident_id
from core.domain.incidents import Incident
from core.domain.policy import Person, Policy
from core.errors import NotAuthorized, NotFound
from core.ports import Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)


class IncidentService:
    def __init__(self, *, store: Store, policy: Policy, clock: Clock, playbooks: PlaybookService,
                 places: Mapping[str, str]) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._playbooks = playbooks
        self._places = places  # the default channels, for announcements with no request thread to go to

    # --- handlers of other services' events, inside their transactions -------------------------

    def on_request_created(self, uow: UnitOfWork, event: RequestCreated) -> None:
        """A request naming an incident joins it (opening it when new); a proposal says which track made it."""
        request = event.request
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

    def on_request_finished(self, uow: UnitOfWork, event: RequestFinished) -> None:
        """A fix that succeeded: its incident, once rated, may teach a playbook; unrated, people are asked."""
        request = event.request
        if request.status is not RequestStatus.succeeded or not request.incident_id:
            return
        incident = uow.incidents.get(request.incident_id, lock=True)
        if incident is None:
            return
        if incident.effectiveness is not None:
            self._playbooks.maybe_extract(uow, incident, self._clock.now())
        else:
            uow.outbox.add(rating_prompt(request, incident, self._policy.playbooks))

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
            announce(uow, change.incident, texts.incident_resolved(incident_id, by.name, score), self._places)
            self._playbooks.maybe_extract(uow, change.incident, now)
            return change.incident

        incident = await self._store.write(resolve)
        log.info("incident.resolved", incident_id=incident_id, score=score, person=by.name)
        return incident

    async def open_incidents(self, limit: int = 200) -> list[Incident]:
        return await self._store.read(lambda uow: uow.incidents.list_open(limit))

    async def incident(self, incident_id: IncidentId) -> Incident:
        incident_id = as_incident_id(incident_id)
        found = await self._store.read(lambda uow: uow.incidents.get(incident_id))
        if found is None:
            raise NotFound(f"There is no incident {incident_id}.")
        return found
