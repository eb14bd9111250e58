"""The timeline repository: the hash chain's rows, its head record, and the reads the integrity checks need
(core/domain/integrity.py)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import sqlalchemy as sa

from adapters.db import tables as t
from core.domain.events import GENESIS_HASH, EventType, NewEvent, TimelineEvent, link, parse_at
from core.errors import SignoffError

# An arbitrary constant: PostgreSQL serialises timeline appends on this advisory lock.
_CHAIN_LOCK = 7_226_001

_INSERT_EVENT = sa.insert(t.timeline)
_CHAIN_HEAD = sa.select(t.chain_head.c.seq, t.chain_head.c.hash).where(t.chain_head.c.id == 1)
_INSERT_HEAD = sa.insert(t.chain_head)
_UPDATE_HEAD = (sa.update(t.chain_head).where(t.chain_head.c.id == 1)
                .values(seq=sa.bindparam("head_seq"), hash=sa.bindparam("head_hash")))
_EVENTS_OF_REQUEST = (sa.select(t.timeline).where(t.timeline.c.request_id == sa.bindparam("key"))
                      .order_by(t.timeline.c.seq))
_EVENTS_OF_INCIDENT = (sa.select(t.timeline).where(t.timeline.c.incident_id == sa.bindparam("key"))
                       .order_by(t.timeline.c.seq))
_KEY_CHANGES = (sa.select(t.timeline).where(t.timeline.c.seq > sa.bindparam("after"),
                                             t.timeline.c.type == EventType.key_changed.value)
                .order_by(t.timeline.c.seq))
_ANY_EVENT = sa.select(t.timeline.c.seq).limit(1)
_LINKS = (sa.select(t.timeline.c.seq, t.timeline.c.prev_hash, t.timeline.c.hash)
          .where(t.timeline.c.seq > sa.bindparam("after"), t.timeline.c.seq <= sa.bindparam("upto"))
          .order_by(t.timeline.c.seq).limit(sa.bindparam("batch")))
_EVENTS_AT = (sa.select(t.timeline).where(t.timeline.c.seq.in_(sa.bindparam("seqs", expanding=True)))
              .order_by(t.timeline.c.seq))
_SCAN = (sa.select(t.timeline).where(t.timeline.c.seq > sa.bindparam("after"))
         .order_by(t.timeline.c.seq).limit(sa.bindparam("batch")))
_ORPHAN_REQUESTS = (sa.select(t.timeline.c.request_id).distinct()
                    .where(t.timeline.c.request_id.is_not(None),
                           t.timeline.c.request_id.not_in(sa.select(t.requests.c.id)))
                    .order_by(t.timeline.c.request_id).limit(sa.bindparam("limit")))


class ChainHeadMissing(SignoffError):
    code = "chain_head_missing"


class SqlTimeline:
    """Appends within one transaction share one read of the chain head, and their rows and the new
    head are written together at `flush`, when the transaction's work is done (a request's creation
    appends several times). Reads of the timeline inside that same transaction do not see them."""

    def __init__(self, conn: sa.Connection, dialect: str, key: bytes | None = None) -> None:
        self._conn = conn
        self._locks_rows = dialect == "postgresql"
        self._key = key
        self._head: tuple[int, str] | None = None
        self._head_stored = False
        self._pending: list[dict[str, object]] = []
        self._held = False

    def append(self, events: Sequence[NewEvent]) -> list[TimelineEvent]:
        if not events:
            return []
        if self._head is None:
            self.hold()
            stored = self.head()
            if stored is None and self._conn.execute(_ANY_EVENT).first() is not None:
                raise ChainHeadMissing(
                    "The timeline has events but its head record (table chain_head) is missing: someone changed the "
                    "database. Nothing more is recorded or run; run `signoff audit verify`.")
            self._head_stored = stored is not None
            self._head = stored or (0, GENESIS_HASH)
        seq, prev = self._head
        linked: list[TimelineEvent] = []
        for event in events:
            seq += 1
            item = link(event, seq, prev, self._key)
            prev = item.hash
            linked.append(item)
        self._pending.extend(_event_row(e) for e in linked)
        self._head = (seq, prev)
        return linked

    def hold(self) -> None:
        """Until this transaction ends, nobody else appends (PostgreSQL; a SQLite writer holds the file)."""
        if self._locks_rows and not self._held:
            self._conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
            self._held = True

    def flush(self) -> None:
        if not self._pending or self._head is None:
            return
        self._conn.execute(_INSERT_EVENT, self._pending)
        self._pending = []
        seq, prev = self._head
        if self._head_stored:
            self._conn.execute(_UPDATE_HEAD, {"head_seq": seq, "head_hash": prev})
        else:
            self._conn.execute(_INSERT_HEAD, {"id": 1, "seq": seq, "hash": prev})
            self._head_stored = True

    def head(self) -> tuple[int, str] | None:
        row = self._conn.execute(_CHAIN_HEAD).first()
        return (int(row[0]), str(row[1])) if row is not None else None

    def for_request(self, request_id: str) -> list[TimelineEvent]:
        return [_event_from(row._mapping) for row in self._conn.execute(_EVENTS_OF_REQUEST, {"key": request_id})]

    def for_incident(self, incident_id: str) -> list[TimelineEvent]:
        return [_event_from(row._mapping) for row in self._conn.execute(_EVENTS_OF_INCIDENT, {"key": incident_id})]

    def key_changes(self, after: int = 0) -> list[TimelineEvent]:
        """The `audit.key_changed` events after `after`, in order (a handful in a database's life)."""
        rows = self._conn.execute(_KEY_CHANGES, {"after": after})
        return [_event_from(row._mapping) for row in rows]

    def links(self, after: int, upto: int, batch: int = 20000) -> Iterator[tuple[int, str, str]]:
        """(seq, prev_hash, hash) of events after..upto, in order: the chain's links without the events."""
        last = after
        while last < upto:
            rows = self._conn.execute(_LINKS, {"after": last, "upto": upto, "batch": batch}).all()
            if not rows:
                return
            for seq, prev_hash, hash_ in rows:
                last = int(seq)
                yield last, str(prev_hash), str(hash_)

    def at(self, seqs: Collection[int]) -> list[TimelineEvent]:
        """The events with these sequence numbers (those that exist), in order."""
        if not seqs:
            return []
        return [_event_from(row._mapping) for row in self._conn.execute(_EVENTS_AT, {"seqs": list(seqs)})]

    def orphan_request_ids(self, limit: int = 10) -> list[str]:
        """Request ids that events name but no request row has (a deleted request)."""
        rows = self._conn.execute(_ORPHAN_REQUESTS, {"limit": limit})
        return [str(row[0]) for row in rows]

    def scan(self, batch: int = 5000, after: int = 0) -> Iterator[TimelineEvent]:
        last = after
        while True:
            rows = self._conn.execute(_SCAN, {"after": last, "batch": batch}).all()
            if not rows:
                return
            for row in rows:
                event = _event_from(row._mapping)
                last = event.seq
                yield event


def _event_row(event: TimelineEvent) -> dict[str, object]:
    row = event.body()
    row["hash"] = event.hash
    row["digest"] = event.digest  # one shape for every row of an executemany
    return row


def _event_from(row: sa.RowMapping) -> TimelineEvent:
    return TimelineEvent(
        seq=row["seq"], at=parse_at(row["at"]), type=row["type"], status=row["status"], title=row["title"],
        detail=row["detail"], actor=row["actor"], actor_role=row["actor_role"], request_id=row["request_id"],
        incident_id=row["incident_id"], prev_hash=row["prev_hash"], hash=row["hash"], digest=row["digest"],
    )
