"""The database's memory of chat deliveries (adapters/db/dedupe.py), on SQLite and PostgreSQL: a key is new
once, whichever instance asks, and rows older than a day are pruned."""

from __future__ import annotations

import asyncio

from adapters.db.database import Database
from adapters.db.dedupe import DatabaseDeliveries
from testkit.support import MovableClock


async def test_a_delivery_is_new_once_across_instances_and_forgotten_after_a_day(database_url: str) -> None:
    clock = MovableClock()
    db = Database(database_url, clock=clock)
    try:
        await db.upgrade()
        first, second = DatabaseDeliveries(db, clock), DatabaseDeliveries(db, clock)
        assert await first.first_time("slack:event:Ev1")
        assert not await second.first_time("slack:event:Ev1")
        # Two replicas racing for the same retry: exactly one wins.
        won = await asyncio.gather(*(d.first_time("slack:command:1.2.x") for d in (first, second, first, second)))
        assert sorted(won) == [False, False, False, True]
        long_key = "slack:command:" + "9" * 300
        assert await first.first_time(long_key) and not await second.first_time(long_key)

        clock.advance(days=2)
        later = DatabaseDeliveries(db, clock)  # its first call prunes
        assert await later.first_time("slack:event:Ev2")
        assert await later.first_time("slack:event:Ev1")  # pruned: a day-old id is not a retry
    finally:
        await db.dispose()
