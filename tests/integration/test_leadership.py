"""Leader election over the `leases` table (core/app/leader.py) with a clock the test moves, on SQLite and
PostgreSQL: one leader at a time, renewals keep it, a lapsed or released lease is taken over, and a leader
that cannot renew (database failing or hanging) steps down before a follower may take over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from adapters.db.database import Database
from core.app.leader import Leadership
from testkit.support import MovableClock

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = "discord-gateway"


class FlakyStore:
    """The database, or a database that fails (`mode = "fail"`) or never answers (`mode = "hang"`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.mode = "ok"

    async def write(self, work: Callable[[Any], T], *, urgent: bool = False, quick: bool = False) -> T:
        if self.mode == "fail":
            raise ConnectionRefusedError("database unreachable")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        return await self.db.write(work, urgent=urgent, quick=quick)

    async def read(self, work: Callable[[Any], T], *, quick: bool = False) -> T:
        return await self.db.read(work, quick=quick)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


def seat(store: Any, clock: MovableClock, owner: str, **timing: float) -> Leadership:
    return Leadership(store, clock, name=LEASE, owner=owner, **timing)


async def holder(db: Database, clock: MovableClock) -> str | None:
    return await db.read(lambda uow: uow.leases.holder(LEASE, clock.now()))


async def test_one_leader_renews_and_a_lapsed_or_released_lease_is_taken_over(db: Database) -> None:
    clock = MovableClock(T0)
    a, b = seat(db, clock, "a"), seat(db, clock, "b")
    assert await a.attempt() and a.is_leader
    assert not await b.attempt() and not b.is_leader
    for _ in range(5):  # renewed every 3 s, the 10 s lease never lapses
        clock.advance(seconds=3)
        assert await a.attempt()
        assert not await b.attempt()
    assert await holder(db, clock) == "a"

    clock.advance(seconds=10)  # a died 10 s ago: its lease lapsed
    assert await b.attempt() and b.is_leader
    assert not await a.attempt() and not a.is_leader  # a woke up late: it is a follower now
    assert await holder(db, clock) == "b"

    await b.resign()  # a clean stop hands the lease on at once
    assert not b.is_leader and await holder(db, clock) is None
    assert await a.attempt()


async def test_a_leader_that_cannot_renew_steps_down_before_anyone_may_take_over(db: Database) -> None:
    clock = MovableClock(T0)
    store = FlakyStore(db)
    a, b = seat(store, clock, "a"), seat(db, clock, "b")
    assert await a.attempt()  # the lease runs until T0 + 10 s
    store.mode = "fail"
    clock.advance(seconds=3)
    assert await a.attempt()  # failed to renew, but 7 s are left: still the leader
    clock.advance(seconds=3)
    assert await a.attempt()
    clock.advance(seconds=2.5)  # T0 + 8.5 s: within the 2 s safety margin of the lapse
    assert not await a.attempt()
    assert not a.is_leader
    clock.advance(seconds=1)  # T0 + 9.5 s: not lapsed yet, so nobody leads for a moment
    assert not await b.attempt()
    clock.advance(seconds=0.5)
    assert await b.attempt()
    store.mode = "ok"
    assert not await a.attempt()  # back, as a follower


async def test_a_hanging_renewal_is_abandoned_at_the_step_down_point(db: Database) -> None:
    clock = MovableClock(T0)
    store = FlakyStore(db)
    a = seat(store, clock, "a")
    assert await a.attempt()
    store.mode = "hang"
    clock.advance(seconds=7.8)  # 0.2 s (real time, as the clock does not move) before the step-down point
    async with asyncio.timeout(30):  # generous: what is checked is that it returns at all
        assert not await a.attempt()


async def test_the_loops_follower_waits_and_takes_over_when_the_leader_stops_renewing(db: Database) -> None:
    clock = MovableClock(T0)
    timing = {"renew_every": 0.01, "poll_every": 0.01}
    store = FlakyStore(db)
    a, b = seat(store, clock, "a", **timing), seat(db, clock, "b", **timing)
    stop = asyncio.Event()
    async with asyncio.timeout(30):
        assert await a.campaign(stop)
        holding = asyncio.create_task(a.hold(stop))
        following = asyncio.create_task(b.campaign(stop))
        for _ in range(20):  # the leader keeps renewing while time passes
            clock.advance(seconds=1)
            await asyncio.sleep(0.02)
        assert not following.done() and not holding.done()

        store.mode = "fail"  # the leader loses the database: it steps down, then the follower takes over
        while not holding.done():
            clock.advance(seconds=0.5)
            await asyncio.sleep(0.02)
        assert await holding is False and not a.is_leader
        while not following.done():
            clock.advance(seconds=0.5)
            await asyncio.sleep(0.02)
        assert await following is True and b.is_leader
        assert await holder(db, clock) == "b"

        # `stop` ends the loops of both a leader and a follower.
        store.mode = "ok"
        holding = asyncio.create_task(b.hold(stop))
        following = asyncio.create_task(a.campaign(stop))
        await asyncio.sleep(0.05)
        stop.set()
        assert await holding is True
        assert await following is False
        await b.resign()
        assert await holder(db, clock) is None


def test_a_renewal_slower_than_the_lease_is_refused() -> None:
    with pytest.raises(ValueError, match="renew_every"):
        Leadership(object(), MovableClock(T0), name=LEASE, owner="a", ttl=5, renew_every=4)  # type: ignore[arg-type]
