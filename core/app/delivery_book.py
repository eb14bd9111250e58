"""Booking delivered messages, several lanes' at once (a small group commit for `core.app.delivery`).

A lane books each message it sent before it sends the card's next one (order per card), and a crash
before the booking commits re-sends, never loses. Lanes that finish calls while a booking is being
written wait for it and then go together in the next write, instead of one write transaction each;
a write the dispatcher makes anyway (a pass's claim) carries the bookings waiting at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.chat.messages import MessageRef
from core.ports import Clock, Store, UnitOfWork


@dataclass
class Booking:
    ids: Sequence[int]
    anchors: Mapping[str, MessageRef]
    done: asyncio.Future[None] = field(repr=False)
    carried: bool = False  # in a write in flight (its lane's, another lane's, or a claim's)


def book(uow: UnitOfWork, bookings: Sequence[Booking], now: datetime) -> None:
    """Write `bookings` (idempotent: a write retried whole after a conflict books the same)."""
    ids: list[int] = []
    for booking in bookings:
        for key, ref in booking.anchors.items():
            uow.outbox.save_anchor(key, ref)
        ids.extend(booking.ids)
    uow.outbox.delivered(sorted(ids), now)


class Bookings:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._waiting: list[Booking] = []
        self._writing = False  # a lane's booking write is in flight: who arrives meanwhile goes in the next
        self._changed: asyncio.Future[None] | None = None  # resolved when a write carrying bookings ends

    async def book(self, ids: Sequence[int], anchors: Mapping[str, MessageRef] | None = None) -> None:
        """Returns once `ids` are booked delivered (and `anchors` saved) by a committed transaction."""
        loop = asyncio.get_running_loop()
        booking = Booking(ids, anchors or {}, loop.create_future())
        self._waiting.append(booking)
        while not booking.done.done():
            if booking.carried or self._writing:
                if self._changed is None:
                    self._changed = loop.create_future()
                await asyncio.shield(self._changed)  # then look again: booked, or given back
            else:
                await self._write(booking)

    async def _write(self, booking: Booking) -> None:
        batch = self._take()
        self._writing = True
        try:
            await self._store.write(functools.partial(book, bookings=batch, now=self._clock.now()))
        except BaseException:
            # This lane's write failed (or it was cancelled): the others' bookings go in the next write.
            self._give_back([other for other in batch if other is not booking])
            raise
        else:
            self._settle(batch)
        finally:
            self._writing = False
            self._notify()

    @contextlib.contextmanager
    def carried(self) -> Iterator[list[Booking]]:
        """The bookings waiting now, for a write made anyway to carry (it calls `book` on them): booked when
        the block returns, given back to their lanes when it raises."""
        batch = self._take()
        try:
            yield batch
        except BaseException:
            self._give_back(batch)
            raise
        else:
            self._settle(batch)
        finally:
            self._notify()

    def _take(self) -> list[Booking]:
        batch, self._waiting = self._waiting, []
        for booking in batch:
            booking.carried = True
        return batch

    def _give_back(self, batch: list[Booking]) -> None:
        for booking in batch:
            booking.carried = False
        self._waiting[:0] = batch

    @staticmethod
    def _settle(batch: list[Booking]) -> None:
        for booking in batch:
            if not booking.done.done():
                booking.done.set_result(None)

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)
