"""Progress notes while a rollout is verified: the new pods, named with their reasons as these change.

One message in the request's thread is edited in place as the new pods' reasons change; a new message
is posted at most once a minute (so a long wait still shows in the thread, without flooding it). Each
posted message is remembered under its own key (`R-12:progress:2`), and the edits go to the latest.
What was shown lives in memory: after a restart the next change simply posts a new message. An edit
that reaches a platform before the message it edits was posted is dropped (the outbox has no anchor
for it yet); the next edit carries the whole note again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.chat.cards import Card
from core.chat.messages import MessageKind, NewMessage
from core.domain.approvals import ApprovalRequest
from core.domain.cluster import PodTrouble, Progress
from core.domain.fail_fast import progress_note

NEW_MESSAGE_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class _Shown:
    text: str
    posted_at: datetime
    number: int


class ProgressNotes:
    def __init__(self) -> None:
        self._shown: dict[str, _Shown] = {}

    def messages(self, request: ApprovalRequest, pods: tuple[PodTrouble, ...], now: datetime) -> list[NewMessage]:
        """What the thread gets for this look: nothing when the new pods look as before, else a new
        message (the first, or a minute after the last one) or an edit of the latest."""
        note = progress_note(pods)
        shown = self._shown.get(request.id)
        if not note or (shown is not None and shown.text == note):
            return []
        # The note is the message's card, so that an edit replaces all it says (on Discord too, where an edit
        # of the embed would leave a text beside it unchanged).
        if shown is None or now - shown.posted_at >= NEW_MESSAGE_EVERY:
            number = 1 if shown is None else shown.number + 1
            self._shown[request.id] = _Shown(note, now, number)
            card = _card(request, number, note)
            return [NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.thread, key=request.id,
                               card=card, anchor_as=card.key) for p in request.places]
        self._shown[request.id] = _Shown(note, shown.posted_at, shown.number)
        card = _card(request, shown.number, note)
        return [NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.card_update, key=card.key,
                           card=card) for p in request.places]

    def changed(self, request: ApprovalRequest, progress: Progress) -> bool:
        """Whether the new pods look different from what the thread shows."""
        shown = self._shown.get(request.id)
        note = progress_note(progress.new_pods)
        return bool(note) and (shown is None or shown.text != note)

    def forget(self, request_id: str) -> None:
        self._shown.pop(request_id, None)


def _card(request: ApprovalRequest, number: int, note: str) -> Card:
    return Card(key=f"{request.id}:progress:{number}", title=f"⏳ {request.id} is being verified",
                text=f"new pods: {note}")
