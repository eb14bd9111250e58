"""`Request again` on a stale request's card (`rerequest R-1` typed): the same action on the same cluster, asked
anew with the clicker as the requester, so the signatures stand for the target as it is now."""

from __future__ import annotations

from core.app.service import ApprovalService
from core.chat.commands import Reply
from core.chat.stale_texts import already_again_text, not_stale_text, rerequested_text
from core.domain.approvals import Place, RequestStatus
from core.domain.ids import RequestId, as_incident_id
from core.domain.policy import Person
from core.errors import NotPending


async def request_again(service: ApprovalService, request_id: RequestId, *, by: Person, via: str,
                        origin: Place | None) -> Reply:
    old = await service.get(request_id)
    if old.status is not RequestStatus.stale:
        raise NotPending(not_stale_text(old), old.id)
    since = old.decided_at or old.created_at
    for open_request in await service.pending():  # a second click (or a second person) signs the first one
        if open_request.action == old.action and open_request.cluster == old.cluster and (
                open_request.created_at >= since):
            raise NotPending(already_again_text(old, open_request), old.id)
    new = await service.request(
        old.action, by=by, via=via, origin=origin, risk=old.stated_risk, reason=old.reason,
        incident_id=as_incident_id(old.incident_id) if old.incident_id else None, cluster=old.cluster,
    )
    return Reply(text=rerequested_text(old, new), request_id=new.id)
