"""An incident whose alerts all resolved while its proposal waited for signatures: the proposal is cancelled
("the alert resolved on its own"), unless `[incidents] cancel_when_resolved = false` keeps it; and nobody is
asked to rate a fix that never ran."""

from __future__ import annotations

from datetime import UTC, datetime

from core.app.transitions import store_transition
from core.domain import approvals
from core.domain.approvals import RequestStatus
from core.domain.incidents import Incident
from core.domain.policy import Policy
from core.ports import UnitOfWork


def cancel_pending(uow: UnitOfWork, incident: Incident, policy: Policy, at: datetime) -> tuple[list[str], list[str]]:
    """Inside the transaction that resolved `incident`: (cancelled, kept) ids of its pending requests."""
    cancelled: list[str] = []
    kept: list[str] = []
    for request_id in incident.request_ids:
        request = uow.requests.get(request_id, lock=True)
        if request is None or request.status is not RequestStatus.pending:
            continue
        if not policy.incidents.cancel_when_resolved:
            kept.append(request.id)
            continue
        changed = approvals.resolved_on_its_own(request, at=at, alert=incident.alert_name or "alert")
        note = (f"🟢 {request.id} cancelled: the alert {incident.alert_name} resolved on its own at "
                f"{at.astimezone(UTC):%H:%M UTC}, before anyone signed; nothing ran.")
        store_transition(uow, request, changed, policy=policy, note=note)
        cancelled.append(request.id)
    return cancelled, kept


def resolved_without_a_fix(incident: Incident, cancelled: list[str], kept: list[str]) -> str:
    """The incident's note when its alerts resolved and no fix by signoff succeeded: nothing to rate."""
    what = (f"all {incident.scope} resolved ({incident.alert_name})" if incident.alert_count > 1
            else f"the alert {incident.alert_name} resolved")
    text = f"🟢 {incident.id}: {what} on its own; no fix by signoff ran, so there is nothing to rate."
    if cancelled:
        text += f" Its proposal {', '.join(cancelled)} is cancelled."
    if kept:
        text += (f" Its proposal {', '.join(kept)} stays pending (`[incidents] cancel_when_resolved = false`); "
                 "sign it only if it is still needed.")
    return text
