"""The store wakes the outbox's delivery after a write that queued messages commits, and only then."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.db.database import Database, SqlUnitOfWork
from core.chat.messages import MessageKind, NewMessage

MESSAGE = NewMessage(platform="console", channel="console", kind=MessageKind.channel, text="hello")


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[Database, Wakes]]:
    wakes = Wakes()
    db = Database(database_url, wake_outbox=wakes)
    await db.upgrade()
    try:
        yield db, wakes
    finally:
        await db.dispose()


async def test_a_write_that_queues_a_message_wakes_delivery_once_after_it_commits(
        store: tuple[Database, Wakes]) -> None:
    db, wakes = store
    seen_inside: list[int] = []

    def queue(uow: SqlUnitOfWork) -> None:
        uow.outbox.add([MESSAGE])
        uow.outbox.add([MESSAGE])
        seen_inside.append(wakes.count)

    before = wakes.count
    await db.write(queue)
    assert seen_inside == [before]  # not while the transaction was open
    assert wakes.count == before + 1
    assert await db.read(lambda uow: uow.outbox.backlog()) == 2


async def test_writes_without_messages_rolled_back_writes_and_reads_do_not_wake(
        store: tuple[Database, Wakes]) -> None:
    db, wakes = store
    before = wakes.count
    await db.write(lambda uow: uow.outbox.add([]))
    await db.read(lambda uow: uow.outbox.backlog())

    def queue_then_fail(uow: SqlUnitOfWork) -> None:
        uow.outbox.add([MESSAGE])
        raise LookupError("changed my mind")

    with pytest.raises(LookupError):
        await db.write(queue_then_fail)
    assert wakes.count == before
    assert await db.read(lambda uow: uow.outbox.backlog()) == 0
