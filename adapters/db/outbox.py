"""The outbox and the anchors: chat messages stored with the change that caused them, delivered later,
and where each delivered card or message lives (so replies find their thread)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.db import tables as t
from adapters.db.repositories import _Repo
from core.chat.messages import MessageKind, MessageRef, NewMessage, OutboxMessage
from core.domain.events import format_at, parse_at

_INSERT_OUTBOX = sa.insert(t.outbox)
_A = t.anchors.c
_ANCHOR = sa.select(t.anchors).where(_A.key == sa.bindparam("key"), _A.platform == sa.bindparam("platform"))
_KEY_BY_MESSAGE = sa.select(_A.key).where(_A.platform == sa.bindparam("platform"),
                                          _A.message_id == sa.bindparam("ref")).limit(1)
_KEY_BY_THREAD = sa.select(_A.key).where(_A.platform == sa.bindparam("platform"),
                                         _A.thread == sa.bindparam("ref")).limit(1)

_BODY_FIELDS = ("text", "card", "anchor_as", "mentions")

# Built once: the dispatcher runs these for every message it delivers.
_O = t.outbox.c
_LEASE = (sa.update(t.outbox)
          .where(_O.id == sa.bindparam("message_id"), _O.status == "pending",
                 sa.or_(_O.leased_until.is_(None), _O.leased_until <= sa.bindparam("now"),
                        _O.lease_owner == sa.bindparam("owner")))
          .values(leased_until=sa.bindparam("until"), lease_owner=sa.bindparam("owner")))
_DELIVERED = (sa.update(t.outbox)
              .where(_O.id.in_(sa.bindparam("ids", expanding=True)), _O.status == "pending")
              .values(delivered_at=sa.bindparam("at"), status="delivered", leased_until=None))
_RELEASE = (sa.update(t.outbox)
            .where(_O.id.in_(sa.bindparam("ids", expanding=True)), _O.status == "pending",
                   _O.lease_owner == sa.bindparam("owner"))
            .values(leased_until=None, lease_owner=None))
_POSTPONE = (sa.update(t.outbox).where(_O.id == sa.bindparam("message_id"))
             .values(next_attempt_at=sa.bindparam("at"), leased_until=None))
_RETRY = (sa.update(t.outbox).where(_O.id == sa.bindparam("message_id"))
          .values(next_attempt_at=sa.bindparam("at"), leased_until=None, attempts=_O.attempts + 1,
                  last_error=sa.bindparam("error")))
_GIVE_UP = (sa.update(t.outbox).where(_O.id == sa.bindparam("message_id"))
            .values(status="dead", last_error=sa.bindparam("error"), attempts=_O.attempts + 1, leased_until=None))
_INSERT_ANCHOR = sa.insert(t.anchors)
_PENDING_UPDATES = sa.select(_O.id).where(_O.platform == sa.bindparam("platform"), _O.key == sa.bindparam("key"),
                                          _O.status == "pending", _O.kind == MessageKind.card_update.value)
_CARD_PENDING = sa.select(_O.id).where(_O.platform == sa.bindparam("platform"), _O.key == sa.bindparam("key"),
                                       _O.status == "pending", _O.kind == MessageKind.card.value).limit(1)


def _due_query(at: Any, platforms: list[str] | Any | None, per_lane: Any, limit: Any,
               paced: list[str] | Any = ()) -> sa.Select[Any]:
    """The due messages; each argument a value, or a bind parameter for the statement built once below."""
    c = t.outbox.c
    conditions = [c.status == "pending", c.next_attempt_at <= at,
                  sa.or_(c.leased_until.is_(None), c.leased_until <= at)]
    if isinstance(paced, sa.BindParameter) or paced:
        conditions.append(sa.or_(c.kind != MessageKind.card_update.value, c.key.is_(None), c.key.not_in(paced)))
    if platforms is not None:
        # Messages for a platform this process cannot reach stay for a process that can; they must not
        # take the window from the platforms it can.
        conditions.append(c.platform.in_(platforms))
    if per_lane is None:
        return sa.select(t.outbox).where(*conditions).order_by(c.id).limit(limit)
    # A card whose messages are waiting (its post not delivered yet) holds at most `per_lane` places.
    lane = sa.func.row_number().over(
        partition_by=(c.platform, sa.func.coalesce(c.key, sa.cast(c.id, sa.String))), order_by=c.id,
    ).label("lane_position")
    ranked = sa.select(t.outbox, lane).where(*conditions).subquery()
    return (sa.select(*[ranked.c[col.name] for col in t.outbox.c])
            .where(ranked.c.lane_position <= per_lane).order_by(ranked.c.id).limit(limit))


_DUE_BY_LANE = _due_query(sa.bindparam("at"), sa.bindparam("platforms", expanding=True), sa.bindparam("per_lane"),
                          sa.bindparam("limit"), sa.bindparam("paced", expanding=True))


class SqlOutbox(_Repo):
    def __init__(self, conn: sa.Connection, dialect: str, now: datetime) -> None:
        super().__init__(conn, dialect)
        self._now = now

    def add(self, messages: Sequence[NewMessage]) -> None:
        if not messages:
            return
        created = format_at(self._now)
        self._conn.execute(_INSERT_OUTBOX, [
            {
                "platform": m.platform, "channel": m.channel, "kind": m.kind.value, "key": m.key,
                "body": m.model_dump_json(include=set(_BODY_FIELDS)), "status": "pending", "attempts": 0,
                "created_at": created, "next_attempt_at": created,
            }
            for m in messages
        ])

    def due(self, now: datetime, limit: int = 50, *, platforms: Collection[str] | None = None,
            per_lane: int | None = None, paced: Collection[str] = ()) -> list[OutboxMessage]:
        at = format_at(now)
        if platforms is not None and per_lane is not None:  # the dispatcher's pass: built once
            rows = self._conn.execute(_DUE_BY_LANE, {"at": at, "platforms": sorted(platforms), "per_lane": per_lane,
                                                     "limit": limit, "paced": sorted(paced)})
        else:
            rows = self._conn.execute(_due_query(at, sorted(platforms) if platforms is not None else None, per_lane,
                                                 limit, sorted(paced)))
        messages = []
        for row in rows:
            m = row._mapping
            body = json.loads(m["body"])
            messages.append(OutboxMessage(
                id=m["id"], platform=m["platform"], channel=m["channel"], kind=MessageKind(m["kind"]), key=m["key"],
                attempts=m["attempts"], created_at=parse_at(m["created_at"]),
                leased_before=m["lease_owner"] is not None, **body,
            ))
        return messages

    def lease(self, message_id: int, *, owner: str, until: datetime, now: datetime) -> bool:
        """Free (or lapsed, or already `owner`'s): now `owner`'s until `until`."""
        result = self._conn.execute(_LEASE, {"message_id": message_id, "now": format_at(now),
                                             "owner": owner, "until": format_at(until)})
        return result.rowcount == 1

    def release(self, message_ids: Sequence[int], *, owner: str) -> None:
        """`owner`'s leases on messages it did not try to send, given back as if never taken."""
        if message_ids:
            self._conn.execute(_RELEASE, {"ids": list(message_ids), "owner": owner})

    def delivered(self, message_ids: Sequence[int], at: datetime) -> None:
        if message_ids:
            self._conn.execute(_DELIVERED, {"ids": list(message_ids), "at": format_at(at)})

    def retry_later(self, message_id: int, *, at: datetime, error: str, count_attempt: bool = True) -> None:
        if not count_attempt:
            self._conn.execute(_POSTPONE, {"message_id": message_id, "at": format_at(at)})
        else:
            self._conn.execute(_RETRY, {"message_id": message_id, "at": format_at(at), "error": error[:2000]})

    def prune(self, before: datetime) -> int:
        """Delivered and given-up messages older than `before`; pending ones are never pruned."""
        c = t.outbox.c
        return int(self._conn.execute(
            sa.delete(t.outbox).where(c.status.in_(("delivered", "dead")),
                                      sa.func.coalesce(c.delivered_at, c.created_at) < format_at(before))
        ).rowcount)

    def give_up(self, message_id: int, *, error: str) -> None:
        self._conn.execute(_GIVE_UP, {"message_id": message_id, "error": error[:2000]})

    def pending_updates(self, platform: str, key: str) -> list[int]:
        rows = self._conn.execute(_PENDING_UPDATES, {"platform": platform, "key": key})
        return [int(row[0]) for row in rows]

    def card_pending(self, platform: str, key: str) -> bool:
        return self._conn.execute(_CARD_PENDING, {"platform": platform, "key": key}).first() is not None

    def backlog(self) -> int:
        return int((self._conn.execute(
            sa.select(sa.func.count()).select_from(t.outbox).where(t.outbox.c.status == "pending")
        )).scalar_one())

    def failures(self) -> int:
        return int((self._conn.execute(
            sa.select(sa.func.count()).select_from(t.outbox).where(t.outbox.c.status == "dead")
        )).scalar_one())

    def anchor(self, key: str, platform: str) -> MessageRef | None:
        row = self._conn.execute(_ANCHOR, {"key": key, "platform": platform}).first()
        if row is None:
            return None
        m = row._mapping
        return MessageRef(platform=m["platform"], channel=m["channel"], message_id=m["message_id"], thread=m["thread"])

    def save_anchor(self, key: str, ref: MessageRef) -> None:
        if self.anchor(key, ref.platform) is not None:
            return
        self._conn.execute(_INSERT_ANCHOR, {"key": key, "platform": ref.platform, "channel": ref.channel,
                                            "message_id": ref.message_id, "thread": ref.thread})

    def key_for_message(self, platform: str, message_or_thread_id: str) -> str | None:
        for query in (_KEY_BY_MESSAGE, _KEY_BY_THREAD):
            row = self._conn.execute(query, {"platform": platform, "ref": message_or_thread_id}).first()
            if row is not None:
                return str(row[0])
        return None
