"""Small shared bookkeeping: named leases between replicas, per-person rate events, per-channel card budgets."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.db import tables as t
from core.domain.events import format_at, parse_at

# Built once: building a statement (and its cache key) costs more than running it, and these run per
# request (rate events), per leader renewal (leases) and per new card (channel budgets).
_L = t.leases.c
# (An UPDATE's bind parameters may not share its columns' names.)
_RENEW_LEASE = (sa.update(t.leases)
                .where(_L.name == sa.bindparam("lease_name"),
                       sa.or_(_L.owner == sa.bindparam("lease_owner"), _L.until <= sa.bindparam("now")))
                .values(owner=sa.bindparam("lease_owner"), until=sa.bindparam("lease_until")))
_LEASE_EXISTS = sa.select(_L.name).where(_L.name == sa.bindparam("name"))
_INSERT_LEASE = sa.insert(t.leases)
_RELEASE_LEASE = sa.delete(t.leases).where(_L.name == sa.bindparam("name"), _L.owner == sa.bindparam("owner"))
_LEASE_HOLDER = sa.select(_L.owner).where(_L.name == sa.bindparam("name"), _L.until > sa.bindparam("now"))
_RE = t.rate_events.c
_OF_PERSON = (_RE.person == sa.bindparam("person"), _RE.kind == sa.bindparam("kind"), _RE.at > sa.bindparam("since"))
_COUNT_RATE_EVENTS = sa.select(sa.func.count()).select_from(t.rate_events).where(*_OF_PERSON)
_OLDEST_RATE_EVENT = sa.select(sa.func.min(_RE.at)).where(*_OF_PERSON)
_INSERT_RATE_EVENT = sa.insert(t.rate_events)
_CC = t.channel_cards.c
_D = t.channel_digests.c
_CHANNEL_LAST = sa.select(_D.last_at).where(_D.platform == sa.bindparam("platform"),
                                            _D.channel == sa.bindparam("channel"))
_CHANNEL_LAST_LOCKED = _CHANNEL_LAST.with_for_update()
_INSERT_CHANNEL = sa.insert(t.channel_digests)
_IN_CHANNEL = (_CC.platform == sa.bindparam("platform"), _CC.channel == sa.bindparam("channel"))
_KNOWN_CARD = sa.select(_CC.carded, _CC.message_id).where(*_IN_CHANNEL, _CC.key == sa.bindparam("key"))
_RECENT_CARDS = (sa.select(sa.func.count()).select_from(t.channel_cards)
                 .where(*_IN_CHANNEL, _CC.carded.is_(True), _CC.at > sa.bindparam("since")))
_INSERT_CARD = sa.insert(t.channel_cards)


class SqlLeases:
    """A named lease: at most one owner until it lapses; the owner renews it, anyone takes a lapsed one."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def acquire(self, name: str, *, owner: str, until: datetime, now: datetime) -> bool:
        taken = self._conn.execute(_RENEW_LEASE, {"lease_name": name, "lease_owner": owner,
                                                  "lease_until": format_at(until), "now": format_at(now)}).rowcount == 1
        if taken:
            return True
        if self._conn.execute(_LEASE_EXISTS, {"name": name}).first() is not None:
            return False
        try:
            with self._conn.begin_nested():
                self._conn.execute(_INSERT_LEASE, {"name": name, "owner": owner, "until": format_at(until)})
        except IntegrityError:
            return False  # another replica inserted it first
        return True

    def release(self, name: str, *, owner: str) -> None:
        self._conn.execute(_RELEASE_LEASE, {"name": name, "owner": owner})

    def holder(self, name: str, now: datetime) -> str | None:
        row = self._conn.execute(_LEASE_HOLDER, {"name": name, "now": format_at(now)}).first()
        return str(row[0]) if row is not None else None


class SqlRateEvents:
    """What each person did and when, so a limit holds across replicas."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def count_since(self, person: str, kind: str, since: datetime) -> int:
        return int(self._conn.execute(_COUNT_RATE_EVENTS, {"person": person, "kind": kind,
                                                           "since": format_at(since)}).scalar_one())

    def oldest_since(self, person: str, kind: str, since: datetime) -> str | None:
        oldest: str | None = self._conn.execute(
            _OLDEST_RATE_EVENT, {"person": person, "kind": kind, "since": format_at(since)}).scalar_one_or_none()
        return oldest

    def record(self, person: str, kind: str, at: datetime) -> None:
        self._conn.execute(_INSERT_RATE_EVENT, {"person": person, "kind": kind, "at": format_at(at)})

    def prune(self, before: datetime) -> int:
        return int(self._conn.execute(
            sa.delete(t.rate_events).where(t.rate_events.c.at <= format_at(before))).rowcount)


class SqlChannelCards:
    """New cards per channel within the last minute, and the cards held back for the channel's digest."""

    def __init__(self, conn: sa.Connection, dialect: str) -> None:
        self._conn = conn
        self._dialect = dialect

    def _lock_channel(self, platform: str, channel: str) -> str | None:
        """Serialises replicas spending one channel's budget (SQLite: the writer is already alone)."""
        query = _CHANNEL_LAST if self._dialect == "sqlite" else _CHANNEL_LAST_LOCKED
        params = {"platform": platform, "channel": channel}
        row = self._conn.execute(query, params).first()
        if row is not None:
            return str(row[0]) if row[0] is not None else None
        try:
            with self._conn.begin_nested():
                self._conn.execute(_INSERT_CHANNEL, {**params, "last_at": None})
        except IntegrityError:
            pass  # another replica inserted it first
        row = self._conn.execute(query, params).first()
        return str(row[0]) if row is not None and row[0] is not None else None

    def take(self, platform: str, channel: str, key: str, *, message_id: int, now: datetime, limit: int) -> bool:
        """True: the message may be posted; False: it waits for the digest.

        Only the first message of a key is a new card; asked again for the same message (a retry), the
        answer is the same.
        """
        self._lock_channel(platform, channel)
        known = self._conn.execute(_KNOWN_CARD, {"platform": platform, "channel": channel, "key": key}).first()
        if known is not None:
            return bool(known[0]) or int(known[1]) != message_id
        recent = int(self._conn.execute(_RECENT_CARDS, {"platform": platform, "channel": channel,
                                                        "since": format_at(now - timedelta(minutes=1))}).scalar_one())
        carded = recent < limit
        self._conn.execute(_INSERT_CARD, {"platform": platform, "channel": channel, "key": key,
                                          "message_id": message_id, "at": format_at(now), "carded": carded,
                                          "digest_at": None})
        return carded

    def waiting(self) -> list[tuple[str, str]]:
        """The channels with held-back cards not yet listed in a digest."""
        c = t.channel_cards.c
        rows = self._conn.execute(sa.select(c.platform, c.channel).where(
            c.carded.is_(False), c.digest_at.is_(None)).distinct())
        return [(str(row[0]), str(row[1])) for row in rows]

    def take_digest(self, platform: str, channel: str, *, now: datetime, every: timedelta) -> list[str]:
        """The keys for this channel's digest, if one is due (at most one per `every`); marks them listed."""
        last = self._lock_channel(platform, channel)
        if last is not None and parse_at(last) > now - every:
            return []
        c = t.channel_cards.c
        rows = self._conn.execute(sa.select(c.id, c.key).where(
            c.platform == platform, c.channel == channel, c.carded.is_(False), c.digest_at.is_(None))
            .order_by(c.id)).all()
        if not rows:
            return []
        self._conn.execute(sa.update(t.channel_cards).where(c.id.in_([row[0] for row in rows]))
                           .values(digest_at=format_at(now)))
        self._conn.execute(sa.update(t.channel_digests).where(
            t.channel_digests.c.platform == platform, t.channel_digests.c.channel == channel)
            .values(last_at=format_at(now)))
        return [str(row[1]) for row in rows]

    def prune(self, before: datetime) -> int:
        c = t.channel_cards.c
        return int(self._conn.execute(sa.delete(t.channel_cards).where(
            c.at <= format_at(before), sa.or_(c.carded.is_(True), c.digest_at.is_not(None)))).rowcount)
