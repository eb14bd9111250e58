"""Deliveries a chat platform may send twice, remembered in the database so every replica sees them.

Slack retries an event it thinks was not acknowledged in time (same `event_id`, `X-Slack-Retry-Num`), and a
signed request can be replayed within its five minutes (same `trigger_id`). Whichever replica a copy lands on,
the first one in wins the row's primary key; the others are duplicates.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.db import tables as t
from core.domain.events import format_at
from core.ports import Clock, SystemClock

if TYPE_CHECKING:
    from adapters.db.database import Database

# Slack retries for about five minutes; a day covers that with room, and keeps the table small.
KEEP = timedelta(days=1)
PRUNE_EVERY = 256
_KEY_LENGTH = 128


def _key(key: str) -> str:
    if len(key) <= _KEY_LENGTH:
        return key
    return key[:_KEY_LENGTH - 65] + "#" + hashlib.sha256(key.encode("utf-8")).hexdigest()


class SqlDeliveries:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def first(self, key: str, at: datetime) -> bool:
        """Record `key`; False when it was recorded before (a duplicate delivery)."""
        c = t.chat_deliveries.c
        key = _key(key)
        if self._conn.execute(sa.select(c.key).where(c.key == key)).first() is not None:
            return False
        try:
            with self._conn.begin_nested():
                self._conn.execute(sa.insert(t.chat_deliveries).values(key=key, at=format_at(at)))
        except IntegrityError:
            return False  # another replica recorded it first
        return True

    def prune(self, before: datetime) -> int:
        c = t.chat_deliveries.c
        return int(self._conn.execute(sa.delete(t.chat_deliveries).where(c.at < format_at(before))).rowcount)


class DatabaseDeliveries:
    """`first_time(key)` over the shared database (what the chat adapters' dedupe middleware asks)."""

    def __init__(self, database: Database, clock: Clock | None = None) -> None:
        self._database = database
        self._clock = clock or SystemClock()
        self._calls = 0

    async def first_time(self, key: str) -> bool:
        now = self._clock.now()
        self._calls += 1
        prune = self._calls % PRUNE_EVERY == 1

        def record(uow: Any) -> bool:
            deliveries = SqlDeliveries(uow.connection)
            if prune:
                deliveries.prune(now - KEEP)
            return deliveries.first(key, now)

        # A person is waiting on the answer (the acknowledgement): ahead of background work.
        return bool(await self._database.write(record, urgent=True))
