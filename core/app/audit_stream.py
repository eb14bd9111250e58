"""The SIEM stream: every timeline event, in chain order, at least once, to an audit sink.

The position (the last seq the sink acknowledged) lives in the database, so a restart, a crash or another
replica goes on from there. One replica sends at a time: a pass holds the lease `audit-stream` while it
sends. A sink that fails is tried again after a growing pause (up to five minutes), recorded in the
database too, so its outage delays the stream and loses nothing; the chat outbox has its own worker and
never waits for it. An event the sink did get but whose acknowledgement was not recorded (a crash in
between) is sent again: receivers dedupe by the event's id (its seq).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog

from core.app.metrics import Metrics
from core.ports import AuditSink, Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)

STREAM = "audit"
LEASE = "audit-stream"
FIRST_PAUSE_S = 1.0
LONGEST_PAUSE_S = 300.0


def pause_after(failures: int) -> timedelta:
    """1 s, 2 s, 4 s … up to five minutes, after the `failures`-th failure in a row."""
    return timedelta(seconds=min(LONGEST_PAUSE_S, FIRST_PAUSE_S * 2 ** max(0, failures - 1)))


class AuditStream:
    def __init__(self, *, store: Store, sink: AuditSink, clock: Clock, metrics: Metrics | None = None,
                 batch: int = 200, lease: timedelta = timedelta(seconds=60), owner: str | None = None) -> None:
        self._store = store
        self._sink = sink
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._batch = batch
        self._lease = lease
        self.owner = owner or uuid.uuid4().hex[:12]

    async def run_once(self) -> int:
        """Send what is due, batch after batch, until the sink fails or the stream is at the chain's head."""
        sent = 0
        while True:
            delivered, more = await self._pass()
            sent += delivered
            if not more:
                return sent

    async def _pass(self) -> tuple[int, bool]:
        now = self._clock.now()

        def claim(uow: UnitOfWork) -> list[dict[str, object]] | None:
            position = uow.stream.position(STREAM)
            if position.not_before is not None and position.not_before > now:
                return None
            if not uow.leases.acquire(LEASE, owner=self.owner, until=now + self._lease, now=now):
                return None  # another replica is sending
            return uow.history.chain(after=position.seq, limit=self._batch)

        events = await self._store.write(claim)
        if not events:
            if events is not None:
                await self._store.write(lambda uow: uow.leases.release(LEASE, owner=self.owner))
            return 0, False
        last_sent: int | None = None
        error: str | None = None
        for event in events:
            try:
                await self._sink.send(event)
            except Exception as exc:  # the sink's own failure, whatever it is: tried again later
                error = f"{type(exc).__name__}: {exc}"[:500]
                break
            last_sent = int(str(event["seq"]))
        failed_at = self._clock.now()

        def record(uow: UnitOfWork) -> int:
            if last_sent is not None:
                uow.stream.advance(STREAM, last_sent)
            failures = 0
            if error is not None:
                failures = uow.stream.position(STREAM).failures + 1
                uow.stream.failed(STREAM, error=error, failures=failures, not_before=failed_at + pause_after(failures))
            uow.leases.release(LEASE, owner=self.owner)
            return failures

        failures = await self._store.write(record)
        delivered = 0 if last_sent is None else sum(1 for e in events if int(str(e["seq"])) <= last_sent)
        self._metrics.inc("signoff_audit_events_sent_total", delivered)
        if error is not None:
            self._metrics.inc("signoff_audit_stream_failures_total")
            log.warning("audit_stream.failed", error=error, failures=failures, delivered=delivered)
            return delivered, False
        return delivered, len(events) == self._batch

    async def lag(self) -> int:
        """Events in the chain that the sink has not acknowledged yet."""
        def read(uow: UnitOfWork) -> int:
            head = uow.timeline.head()
            return max(0, (head[0] if head else 0) - uow.stream.position(STREAM).seq)
        return await self._store.read(read)
