"""Delivered messages booked together (core/app/delivery_book.py): whoever waits goes in the next write, a write
made anyway carries them, and a write that fails leaves the others' bookings to their own lanes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from core.app.delivery_book import Bookings, book
from core.chat.messages import MessageRef


class Outbox:
    def __init__(self) -> None:
        self.delivered: list[list[int]] = []
        self.anchors: dict[str, MessageRef] = {}

    def delivered_(self, ids: list[int], at: datetime) -> None:
        self.delivered.append(list(ids))

    def save_anchor(self, key: str, ref: MessageRef) -> None:
        self.anchors.setdefault(key, ref)


class Store:
    """Each write yields to the loop (as a real one does), waits while `gate` is closed, and commits; the writes
    numbered in `fail` (from 1) raise instead."""

    def __init__(self) -> None:
        self.outbox = Outbox()
        self.fail: set[int] = set()
        self.attempts = 0
        self.writes = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, work: Callable[[Any], Any], *, urgent: bool = False) -> Any:
        await asyncio.sleep(0)
        await self.gate.wait()
        self.attempts += 1
        if self.attempts in self.fail:
            raise RuntimeError("database is gone")
        uow = type("Uow", (), {"outbox": type("O", (), {"delivered": self.outbox.delivered_,
                                                         "save_anchor": self.outbox.save_anchor})()})()
        result = work(uow)
        self.writes += 1
        return result

    async def read(self, work: Callable[[Any], Any]) -> Any:
        raise AssertionError("bookings never read")


class Clock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


async def test_lanes_that_arrive_during_a_write_go_together_in_the_next() -> None:
    store = Store()
    bookings = Bookings(store, Clock())  # type: ignore[arg-type]
    ref = MessageRef(platform="rec", channel="C1", message_id="m1")
    await asyncio.gather(*(bookings.book([n], anchors={"R-1": ref} if n == 1 else None) for n in range(1, 6)))
    assert store.outbox.delivered == [[1], [2, 3, 4, 5]] and store.writes == 2
    assert store.outbox.anchors == {"R-1": ref}


async def test_a_failed_write_fails_its_lane_only_and_the_others_book_alone() -> None:
    store = Store()
    bookings = Bookings(store, Clock())  # type: ignore[arg-type]
    store.gate.clear()
    first = asyncio.ensure_future(bookings.book([1]))
    await asyncio.sleep(0)  # the first lane's write is under way: the next three wait for it
    second = asyncio.ensure_future(bookings.book([2]))
    others = asyncio.gather(bookings.book([3]), bookings.book([4]))
    await asyncio.sleep(0)
    store.fail = {2}  # the second lane's write, carrying the others' bookings too
    store.gate.set()
    await first
    with pytest.raises(RuntimeError):
        await second
    await others
    assert store.outbox.delivered == [[1], [3, 4]]


async def test_a_write_made_anyway_carries_the_waiting_bookings_and_gives_them_back_when_it_fails() -> None:
    store = Store()
    bookings = Bookings(store, Clock())  # type: ignore[arg-type]
    store.gate.clear()
    first = asyncio.ensure_future(bookings.book([1]))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(bookings.book([2]))
    await asyncio.sleep(0)
    with bookings.carried() as carried:  # a claim: its write books them
        assert [b.ids for b in carried] == [[2]]
        store.gate.set()
        await store.write(lambda uow: book(uow, carried, Clock().now()))
    await asyncio.gather(first, waiting)
    assert sorted(store.outbox.delivered) == [[1], [2]] and store.writes == 2

    store.gate.clear()
    later = asyncio.ensure_future(bookings.book([3]))
    await asyncio.sleep(0)
    more = asyncio.ensure_future(bookings.book([4]))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError), bookings.carried() as carried:
        assert [b.ids for b in carried] == [[4]]
        raise RuntimeError("the claim failed")
    store.gate.set()
    await asyncio.gather(later, more)  # the lane booked its own
    assert store.outbox.delivered[-2:] == [[3], [4]]
