"""The incident and playbook commands' handlers: `resolve` (and the rating buttons), `incidents`,
`playbooks`, votes.

They live apart from the approval commands because they need the `IncidentService` and the
`PlaybookService`; the composition root hands them to `ChatCommands(more=learning_handlers(...))`.
"""

from __future__ import annotations

from core.app.handlers import Caller, Handlers
from core.app.incidents import IncidentService
from core.app.playbooks import PlaybookService
from core.chat import learning_texts as texts
from core.chat.commands import Incidents, Playbooks, Rate, Reply, Resolve, Vote


def learning_handlers(incidents: IncidentService, playbooks: PlaybookService) -> Handlers:
    async def resolve(command: Resolve, caller: Caller) -> Reply:
        incident = await incidents.resolve(command.incident, by=caller.person, score=command.score, via=caller.via)
        return Reply(text=texts.resolved_reply(incident.id, command.score, playbooks.rules))

    async def list_playbooks(command: Playbooks, caller: Caller) -> Reply:
        return Reply(text=texts.playbooks_text(await playbooks.all(), playbooks.rules))

    async def list_incidents(command: Incidents, caller: Caller) -> Reply:
        return Reply(text=texts.open_incidents_text(await incidents.open_incidents()))

    async def vote(command: Vote, caller: Caller) -> Reply:
        playbook = await playbooks.vote(command.playbook, approve=command.approve, by=caller.person, via=caller.via)
        return Reply(text=texts.vote_counted(playbook))

    return (
        Handlers()
        .add(Resolve, resolve)
        .add(Rate, resolve)  # a rating button says the same as `resolve INC-7 score=4`
        .add(Playbooks, list_playbooks)
        .add(Incidents, list_incidents)
        .add(Vote, vote)
    )
