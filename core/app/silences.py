"""Silences while it runs: one Alertmanager silence per executing request, expired when it ends.

The silence is made when the operation starts (before its dry run) and expired when the request ends,
whatever the outcome: at once on a failure, so the alerts fire. Its id goes into the timeline
(`silenced`), so the replica that ends the request finds it even when another one made it; the silence's
own `endsAt` is the verification deadline, so a crash leaves nothing behind for longer than that.
Alertmanager being away never holds an operation back: the thread and `/metrics` say so instead.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from core.app.clusters import label_of
from core.app.metrics import Metrics
from core.app.notify import thread_replies
from core.domain.approvals import ApprovalRequest
from core.domain.events import EventType, NewEvent
from core.domain.silences import matchers_for, silence_comment
from core.ports import Clock, SilenceFailed, Silencer, Store, UnitOfWork

log = structlog.get_logger(__name__)

SILENCE_PREFIX = "silence "


class SilenceKeeper:
    def __init__(self, *, silencer: Silencer, store: Store, clock: Clock, metrics: Metrics, window: timedelta) -> None:
        self._silencer = silencer
        self._store = store
        self._clock = clock
        self._metrics = metrics
        # How long a silence may last at most: the verification deadline from the operation's start.
        self._window = window
        self._made: dict[str, str] = {}  # request id → silence id, for the ones this process made

    async def begin(self, request: ApprovalRequest) -> None:
        """Silence the target's alerts until the verification deadline; never raises."""
        operation = request.operation
        matchers = matchers_for(operation)
        now = self._clock.now()
        comment = silence_comment(request.id, operation.command(), request.counted_signers)
        try:
            silence_id = await self._silencer.create(matchers, starts_at=now, ends_at=now + self._window,
                                                     comment=comment)
        except SilenceFailed as failed:
            self._metrics.inc("signoff_silence_failures_total", step="create", cluster=label_of(request))
            log.warning("silence.create_failed", request_id=request.id, reason=failed.reason)
            text = (f"🔔 Could not silence the alerts of {operation.target_ref} in Alertmanager ({failed.reason}); "
                    f"{request.id} runs anyway, and its alerts may fire while it does.")
            await self._store.write(lambda uow: self._note(uow, request, text))
            return
        self._made[request.id] = silence_id
        shown = ", ".join(m.show() for m in matchers)
        event = NewEvent(at=now, type=EventType.silenced, status=str(request.status),
                         title=f"alerts silenced in Alertmanager until {(now + self._window):%H:%M:%S} UTC",
                         detail=f"{SILENCE_PREFIX}{silence_id} · {shown}", request_id=request.id,
                         incident_id=request.incident_id)
        await self._store.write(lambda uow: uow.timeline.append([event]))
        self._metrics.inc("signoff_silences_total", step="create", cluster=label_of(request))
        log.info("silence.created", request_id=request.id, silence_id=silence_id, matchers=shown)

    async def end(self, request: ApprovalRequest) -> None:
        """Expire the request's silence, if it has one; never raises."""
        silence_id = self._made.pop(request.id, None) or await self._find(request.id)
        if silence_id is None:
            return
        try:
            await self._silencer.expire(silence_id)
        except SilenceFailed as failed:
            self._metrics.inc("signoff_silence_failures_total", step="expire", cluster=label_of(request))
            log.warning("silence.expire_failed", request_id=request.id, silence_id=silence_id, reason=failed.reason)
            text = (f"🔔 Could not end the Alertmanager silence of {request.id} ({failed.reason}); it ends by "
                    f"itself at its deadline, or expire silence {silence_id} in Alertmanager now.")
            await self._store.write(lambda uow: self._note(uow, request, text))
            return
        event = NewEvent(at=self._clock.now(), type=EventType.unsilenced, status=str(request.status),
                         title="the Alertmanager silence ended with the verification",
                         detail=f"{SILENCE_PREFIX}{silence_id}", request_id=request.id,
                         incident_id=request.incident_id)
        await self._store.write(lambda uow: uow.timeline.append([event]))
        self._metrics.inc("signoff_silences_total", step="expire", cluster=label_of(request))
        log.info("silence.expired", request_id=request.id, silence_id=silence_id)

    async def _find(self, request_id: str) -> str | None:
        """The silence another process made for this request (its `silenced` event), unless already ended."""
        events = await self._store.read(lambda uow: uow.timeline.for_request(request_id))
        made = [e.detail for e in events if e.type is EventType.silenced]
        ended = {e.detail for e in events if e.type is EventType.unsilenced}
        for detail in reversed(made):
            silence_id = detail.removeprefix(SILENCE_PREFIX).split(" · ", 1)[0]
            if f"{SILENCE_PREFIX}{silence_id}" not in ended:
                return silence_id
        return None

    @staticmethod
    def _note(uow: UnitOfWork, request: ApprovalRequest, text: str) -> None:
        uow.outbox.add(thread_replies(request, text))
