"""Small shared bookkeeping: named leases between replicas, and per-person rate events."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.db import tables as t
from core.domain.events import format_at


class SqlLeases:
    """A named lease: at most one owner until it lapses; the owner renews it, anyone takes a lapsed one."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def acquire(self, name: str, *, owner: str, until: datetime, now: datetime) -> bool:
        c = t.leases.c
        taken = self._conn.execute(
            sa.update(t.leases).where(c.name == name, sa.or_(c.owner == owner, c.until <= format_at(now)))
            .values(owner=owner, until=format_at(until))
        ).rowcount == 1
        if taken:
            return True
        if self._conn.execute(sa.select(c.name).where(c.name == name)).first() is not None:
            return False
        try:
            with self._conn.begin_nested():
                self._conn.execute(sa.insert(t.leases).values(name=name, owner=owner, until=format_at(until)))
        except IntegrityError:
            return False  # another replica inserted it first
        return True

    def release(self, name: str, *, owner: str) -> None:
        c = t.leases.c
        self._conn.execute(sa.delete(t.leases).where(c.name == name, c.owner == owner))

    def holder(self, name: str, now: datetime) -> str | None:
        c = t.leases.c
        row = self._conn.execute(sa.select(c.owner).where(c.name == name, c.until > format_at(now))).first()
        return str(row[0]) if row is not None else None


class SqlRateEvents:
    """What each person did and when, so a limit holds across replicas."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def count_since(self, person: str, kind: str, since: datetime) -> int:
        c = t.rate_events.c
        return int(self._conn.execute(
            sa.select(sa.func.count()).select_from(t.rate_events)
            .where(c.person == person, c.kind == kind, c.at > format_at(since))
        ).scalar_one())

    def oldest_since(self, person: str, kind: str, since: datetime) -> str | None:
        c = t.rate_events.c
        return self._conn.execute(
            sa.select(sa.func.min(c.at)).where(c.person == person, c.kind == kind, c.at > format_at(since))
        ).scalar_one_or_none()

    def record(self, person: str, kind: str, at: datetime) -> None:
        self._conn.execute(sa.insert(t.rate_events).values(person=person, kind=kind, at=format_at(at)))

    def prune(self, before: datetime) -> int:
        return int(self._conn.execute(
            sa.delete(t.rate_events).where(t.rate_events.c.at <= format_at(before))).rowcount)
