"""A new request with the change its dry run showed: on the request (its card, the API) and in the detail of
its `requested` event (the timeline). Not part of `signed_digest`, which stands for the operation alone."""

from __future__ import annotations

from core.domain.approvals import Transition
from core.domain.changes import Preview
from core.domain.events import EventType


def with_preview(created: Transition, preview: Preview | None) -> Transition:
    """`created` (from `approvals.new_request`) carrying `preview`."""
    if preview is None:
        return created
    request = created.request.model_copy(update={"preview": preview})
    lines = preview.card_lines()
    events = tuple(
        event.model_copy(update={"detail": f"{event.detail}; change: {'; '.join(lines)}"})
        if event.type is EventType.requested and lines else event
        for event in created.events
    )
    return Transition(request, events)
