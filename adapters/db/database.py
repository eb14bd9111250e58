"""The database: one transaction = one function, run in one hop.

SQLAlchemy's aiosqlite dialect crosses threads several times per statement (about eight
round trips per execute, ~1 ms each on these machines), which capped signatures at about
100 per second. So a unit of work is a plain function over synchronous repositories:

- SQLite: run on a dedicated writer thread (reads on a small reader pool) through
  SQLAlchemy's pysqlite dialect, WAL, `BEGIN IMMEDIATE` for writes;
- PostgreSQL: `AsyncConnection.run_sync` over asyncpg, on the event loop, row locks and an
  advisory lock for the timeline.

Either way the function is retried whole on a write conflict (it has no side effects
outside the transaction), committed when it returns and rolled back when it raises.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from adapters.db.bookkeeping import SqlChannelCards, SqlLeases, SqlRateEvents
from adapters.db.history import SqlHistory
from adapters.db.outbox import SqlOutbox
from adapters.db.repositories import SqlIncidents, SqlPlaybooks, SqlRequests, SqlTimeline
from adapters.db.stream import SqlStreamPositions
from adapters.db.urls import mask_url
from core.chat.messages import NewMessage
from core.errors import ConcurrentUpdate, SignoffError
from core.ports import Clock, SystemClock

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
WRITE_ATTEMPTS = 5
# A quick SQLite transaction runs on the event loop; after this many of its commits, the writer thread moves the
# WAL into the database file (a checkpoint syncs the disk, which the loop must not wait for).
CHECKPOINT_EVERY = 256
# An arbitrary constant: PostgreSQL serialises migrations on this advisory lock.
_MIGRATION_LOCK = 7_226_002


class DatabaseUnavailable(SignoffError):
    code = "database_unavailable"


class _QueuingOutbox(SqlOutbox):
    """The outbox of one transaction, remembering whether it queued a message (to wake delivery on commit)."""

    queued = False

    def add(self, messages: Sequence[NewMessage]) -> None:
        if messages:
            self.queued = True
        super().add(messages)


class SqlUnitOfWork:
    """The repositories over one open transaction."""

    def __init__(self, conn: sa.Connection, dialect: str, clock: Clock, audit_key: bytes | None = None) -> None:
        self.connection = conn
        self.requests = SqlRequests(conn, dialect)
        self.timeline = SqlTimeline(conn, dialect, audit_key)
        self.outbox = _QueuingOutbox(conn, dialect, clock.now())
        self.incidents = SqlIncidents(conn, dialect)
        self.playbooks = SqlPlaybooks(conn, dialect)
        self.leases = SqlLeases(conn)
        self.rate_events = SqlRateEvents(conn)
        self.channel_cards = SqlChannelCards(conn, dialect)
        self.history = SqlHistory(conn)
        self.stream = SqlStreamPositions(conn)


class Database:
    def __init__(self, url: str, *, clock: Clock | None = None, audit_key: bytes | None = None,
                 wake_outbox: Callable[[], None] | None = None) -> None:
        self.url = url
        # Called on the event loop after a write that queued outbox messages has committed.
        self._wake_outbox = wake_outbox
        self.audit_key = audit_key
        self.clock = clock or SystemClock()
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        # Transactions this process ran (committed writes, reads): what a path costs, for tests and benches.
        self.writes = 0
        self.reads = 0
        self._sync: sa.Engine | None = None
        self._async: AsyncEngine | None = None
        self._writer: _Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._inline: sa.Engine | None = None
        self._inline_commits = 0
        if self.dialect == "sqlite":
            self._sync = _sqlite_engine(parsed)
            self._inline = _sqlite_engine(parsed, on_loop=True)
            self._writer = _Writer()
            self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="signoff-db-read")
        else:
            if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
                parsed = parsed.set(drivername="postgresql+asyncpg")
            # Imported here: SQLite (one process, the common start-up) never needs the asyncio extension.
            from sqlalchemy.ext.asyncio import create_async_engine

            self._async = create_async_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)

    @property
    def sole_worker(self) -> bool:
        """A SQLite file serves one signoff process, so nothing else can be executing."""
        return self.dialect == "sqlite"

    def describe(self) -> str:
        return mask_url(self.url)

    # `Any`: callers pass functions over the core's UnitOfWork or over SqlUnitOfWork (tests, the CLI).
    async def write(self, work: Callable[[Any], T], *, urgent: bool = False, quick: bool = False) -> T:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                result, queued = await self._run(work, write=True, urgent=urgent, quick=quick)
            except ConcurrentUpdate:
                if attempt == WRITE_ATTEMPTS:
                    raise
            except (OperationalError, DBAPIError) as exc:
                if attempt == WRITE_ATTEMPTS or not _retryable(exc):
                    raise
            else:
                self.writes += 1
                if queued and self._wake_outbox is not None:
                    self._wake_outbox()
                return result
            log.info("db.retry", attempt=attempt)
            await asyncio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")

    async def read(self, work: Callable[[Any], T], *, quick: bool = False) -> T:
        result, _ = await self._run(work, write=False, quick=quick)
        self.reads += 1
        return result

    async def _run(self, work: Callable[[Any], T], *, write: bool, urgent: bool = False,
                   quick: bool = False) -> tuple[T, bool]:
        """The work's result, and whether it queued outbox messages; committed (or rolled back) when it returns."""
        if self._sync is not None:
            if quick and self._inline is not None:
                ran = self._on_loop(work, write)
                if ran is not None:
                    return ran
            call = functools.partial(self._in_sync_transaction, work, write)
            if write:
                assert self._writer is not None
                return await asyncio.wrap_future(self._writer.submit(call, urgent=urgent))
            return await asyncio.get_running_loop().run_in_executor(self._readers, call)
        assert self._async is not None
        async with self._async.connect() as conn:
            return await conn.run_sync(self._in_transaction, work)

    def _on_loop(self, work: Callable[[SqlUnitOfWork], T], write: bool) -> tuple[T, bool] | None:
        """A quick transaction run right here, on the event loop: a SQLite transaction of a few statements
        costs less CPU than handing it to a thread and back (~0.15 ms a hop, most of a transaction's cost).
        None when the file is locked by someone else (another process, or the writer thread's own work):
        then it waits on a thread like any other, and the loop never waits for a lock."""
        assert self._inline is not None
        try:
            ran = self._in_sync_transaction(work, write, engine=self._inline)
        except OperationalError as exc:
            if not _locked(exc):
                raise
            return None
        if write:
            self._inline_commits += 1
            if self._inline_commits % CHECKPOINT_EVERY == 0 and self._writer is not None:
                self._writer.submit(self._checkpoint, urgent=False)
        return ran

    def _checkpoint(self) -> None:
        assert self._sync is not None
        try:
            with self._sync.connect() as conn:
                # TRUNCATE, not PASSIVE: a passive checkpoint racing the loop's next commits never catches up with
                # them, and the WAL would only grow.
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except SQLAlchemyError as exc:  # the next one tries again; SQLite checkpoints on its own meanwhile
            log.warning("db.checkpoint_failed", error=type(exc).__name__)

    def _in_sync_transaction(self, work: Callable[[SqlUnitOfWork], T], write: bool,
                             engine: sa.Engine | None = None) -> tuple[T, bool]:
        assert self._sync is not None
        with (engine or self._sync).connect() as conn:
            return self._in_transaction(conn.execution_options(sqlite_immediate=write), work)

    def _in_transaction(self, conn: sa.Connection, work: Callable[[SqlUnitOfWork], T]) -> tuple[T, bool]:
        with conn.begin():
            uow = SqlUnitOfWork(conn, self.dialect, self.clock, self.audit_key)
            result = work(uow)
            uow.timeline.flush()
        return result, uow.outbox.queued

    async def check(self) -> None:
        try:
            await self.read(lambda uow: uow.connection.execute(sa.text("SELECT 1")).scalar_one())
        except (SQLAlchemyError, OSError) as exc:
            first_line = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise DatabaseUnavailable(
                f"The database at {self.describe()} is unreachable ({type(exc).__name__}: {first_line}); "
                "check SIGNOFF_DATABASE_URL."
            ) from None

    async def upgrade(self) -> None:
        await self.check()
        await self.write(lambda uow: _run_upgrade(uow.connection))
        log.info("db.upgraded", dialect=self.dialect)

    async def dispose(self) -> None:
        if self._sync is not None:
            engine = self._sync
            if self._writer is not None:
                self._writer.shutdown()
            if self._readers is not None:
                self._readers.shutdown(wait=True)
            engine.dispose()
        if self._inline is not None:
            self._inline.dispose()
        if self._async is not None:
            await self._async.dispose()


class _Writer:
    """The one thread that runs every SQLite write transaction. A person's action (a click) jumps
    the queue of background work (deliveries, executions), so its acknowledgement stays quick."""

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], Any] | None, Future[Any] | None]] = \
            queue.PriorityQueue()
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name="signoff-db-write", daemon=True)
        self._thread.start()

    def submit(self, call: Callable[[], T], *, urgent: bool) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((0 if urgent else 1, next(self._order), call, future))
        return future

    def shutdown(self) -> None:
        self._queue.put((2, next(self._order), None, None))  # after everything already queued
        self._thread.join()

    def _run(self) -> None:
        while True:
            _, _, call, future = self._queue.get()
            if call is None or future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
                future.set_exception(exc)


def _locked(exc: DBAPIError) -> bool:
    return "database is locked" in str(exc.orig if exc.orig is not None else exc).lower()


def _retryable(exc: DBAPIError) -> bool:
    """Conflicts another transaction caused: running the whole function again sees its result."""
    if isinstance(exc, IntegrityError):
        return True
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return any(marker in text for marker in ("database is locked", "deadlock", "could not serialize"))


def head_revision() -> str:
    """The newest migration's revision: migrations are `versions/NNNN_<what>.py` with `revision = "NNNN"`
    (tests/unit/test_migrations.py checks this against Alembic's own view of the head)."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def _current_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _run_upgrade(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas started together: one migrates, the others wait here and then find the schema current.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    # A restart finds the schema current: one query instead of importing and running Alembic (about a
    # fifth of the start-up time), which is only needed when there is something to migrate.
    if _current_revision(connection) == head_revision():
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_engine(url: URL, *, on_loop: bool = False) -> sa.Engine:
    """The engine of the database threads; `on_loop`: the event loop's own, which never waits for a lock
    (busy_timeout 0: a locked file is handed to the threads) nor for the disk (no automatic checkpoint)."""
    database = url.database or ""
    if database and database != ":memory:":
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url.set(drivername="sqlite"),
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=1 if on_loop else 4, max_overflow=4,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below) so a writer takes the write lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=0" if on_loop else "PRAGMA busy_timeout=30000")
        if on_loop:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
