"""Which outbox messages a change to a request causes. Pure: returns messages, stores nothing."""

from __future__ import annotations

from collections.abc import Iterable

from core.app.outbox import MessageKind, NewMessage
from core.domain.approvals import ApprovalRequest, Place, RequestStatus


def card_posts(request: ApprovalRequest) -> list[NewMessage]:
    return [
        NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.card, key=request.id)
        for p in request.places
    ]


def card_updates(request: ApprovalRequest) -> list[NewMessage]:
    return [
        NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.card_update, key=request.id)
        for p in request.places
    ]


def thread_replies(request: ApprovalRequest, text: str, places: Iterable[Place] | None = None) -> list[NewMessage]:
    return [
        NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.thread, key=request.id, text=text)
        for p in (request.places if places is None else places)
    ]


def routed(defaults: dict[str, str], origin: Place | None) -> tuple[Place, ...]:
    """The origin place first, then the default channel of every other configured platform."""
    chosen: list[Place] = [origin] if origin is not None else []
    for platform, channel in defaults.items():
        if not any(p.platform == platform for p in chosen):
            chosen.append(Place(platform=platform, channel=channel))
    return tuple(chosen)


def status_note(request: ApprovalRequest) -> str | None:
    """The thread message a state change deserves, if any (signatures only update the card)."""
    status = request.status
    if status is RequestStatus.approved:
        return f"✅ {request.id} approved by {', '.join(request.signers)}: dry run and execution follow."
    if status is RequestStatus.rejected:
        return f"🚫 {request.id} vetoed by {request.decided_by}; nothing will run."
    if status is RequestStatus.cancelled:
        return f"🗑️ {request.id} cancelled by {request.decided_by}; nothing will run."
    if status is RequestStatus.interrupted:
        return (f"⚠️ {request.id} was interrupted mid-flight (signoff stopped while executing); "
                "the outcome is unknown. Check the cluster; signoff will not re-run it.")
    if status is RequestStatus.expired:
        if request.approved_at is not None:
            return (f"⌛ {request.id} expired: approved at {request.approved_at:%H:%M UTC} but not run within "
                    "the expiry window, and nothing runs on a stale approval. Ask again if still needed.")
        return (f"⌛ {request.id} expired with {request.signed}/{request.quorum} signatures; nothing ran. "
                "Ask again if it is still needed.")
    return None
