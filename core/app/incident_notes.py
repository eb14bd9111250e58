"""What the incident side says, and where: shared by the alert intake, the incidents and the playbooks.

Functions over an open unit of work; they only queue outbox messages.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.app.notify import thread_replies
from core.chat import learning_texts as texts
from core.chat.messages import MessageKind, NewMessage
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.incidents import Incident
from core.domain.policy import PlaybookRules
from core.ports import UnitOfWork


def announce(uow: UnitOfWork, incident: Incident, text: str, places: Mapping[str, str], *,
             anchor_as: str | None = None) -> None:
    """Into the thread of the incident's latest request; else into the default channels (`places`)."""
    for request_id in reversed(incident.request_ids):
        request = uow.requests.get(request_id)
        if request is not None and request.places:
            uow.outbox.add([m.model_copy(update={"anchor_as": anchor_as}) for m in thread_replies(request, text)])
            return
    uow.outbox.add([
        NewMessage(platform=platform, channel=channel, kind=MessageKind.channel, key=incident.id, text=text,
                   anchor_as=anchor_as)
        for platform, channel in places.items()
    ])


def last_fix(uow: UnitOfWork, incident: Incident) -> ApprovalRequest | None:
    """The incident's latest request that succeeded: the fix a playbook is learned from."""
    for request_id in reversed(incident.request_ids):
        request = uow.requests.get(request_id)
        if request is not None and request.status is RequestStatus.succeeded:
            return request
    return None


def rating_prompt(request: ApprovalRequest, incident: Incident, rules: PlaybookRules,
                  evidence: str | None = None) -> list[NewMessage]:
    """The rating buttons, in the fix's thread."""
    card = texts.rating_card(request.id, incident.id, rules, evidence=evidence)
    return [
        NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.thread, key=request.id, card=card,
                   text=card.title)
        for p in request.places
    ]
