"""SQLite: a quick transaction runs on the event loop (no hop to a thread), but never waits there for a lock
or for the disk: a file locked by someone else sends it to the writer thread, and the WAL is checkpointed
off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.db.database import CHECKPOINT_EVERY, Database, SqlUnitOfWork
from core.chat.messages import MessageKind, NewMessage

MESSAGE = NewMessage(platform="console", channel="console", kind=MessageKind.channel, text="x" * 2000)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/signoff.db")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


def size_of(path: Path) -> int:
    return path.stat().st_size


def file_of(db: Database) -> str:
    return db.url.split(":///", 1)[1]


async def test_a_quick_transaction_runs_on_the_loop_and_any_other_on_a_thread(db: Database) -> None:
    loop_thread = threading.get_ident()
    writes, reads = db.writes, db.reads

    def where(uow: SqlUnitOfWork) -> int:
        uow.outbox.add([MESSAGE])
        return threading.get_ident()

    assert await db.write(where, quick=True) == loop_thread
    assert await db.read(lambda uow: threading.get_ident(), quick=True) == loop_thread
    assert await db.write(where) != loop_thread
    assert await db.read(lambda uow: threading.get_ident()) != loop_thread
    assert await db.read(lambda uow: uow.outbox.backlog(), quick=True) == 2
    assert (db.writes - writes, db.reads - reads) == (2, 3)


async def test_a_quick_write_on_a_locked_file_waits_on_the_writer_thread_not_on_the_loop(db: Database) -> None:
    holder = sqlite3.connect(file_of(db), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    loop_thread = threading.get_ident()
    ran_on: list[int] = []

    def write(uow: SqlUnitOfWork) -> None:
        ran_on.append(threading.get_ident())
        uow.outbox.add([MESSAGE])

    task = asyncio.create_task(db.write(write, quick=True))
    ticks = 0
    while ticks < 20:  # the loop keeps running while the write waits for the lock
        await asyncio.sleep(0.005)
        ticks += 1
    assert not task.done()
    holder.execute("COMMIT")
    holder.close()
    await task
    assert ran_on and ran_on[-1] != loop_thread
    assert await db.read(lambda uow: uow.outbox.backlog(), quick=True) == 1


async def test_quick_writes_leave_the_checkpoint_to_the_writer_thread(db: Database) -> None:
    """The loop's connection never checkpoints (that syncs the disk); every CHECKPOINT_EVERY of its commits the
    writer thread does, so the WAL does not grow without end."""
    wal = Path(file_of(db) + "-wal")
    for _ in range(CHECKPOINT_EVERY - 1):
        await db.write(lambda uow: uow.outbox.add([MESSAGE]), quick=True)
    one_period = size_of(wal)
    for _ in range(CHECKPOINT_EVERY * 3 + 1):
        await db.write(lambda uow: uow.outbox.add([MESSAGE]), quick=True)
    await db.write(lambda uow: None)  # runs after the checkpoints queued on the writer thread (one queue, in order)
    # Without the writer's checkpoints the WAL would hold four periods of commits; with them at most about two
    # (a checkpoint may lag, and a commit meeting one waits on the writer thread, where it is not counted).
    assert size_of(wal) < one_period * 2.5
    assert await db.read(lambda uow: uow.outbox.backlog()) == CHECKPOINT_EVERY * 4
