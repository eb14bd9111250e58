"""The database: engine set-up per dialect, migrations, and the unit of work."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction, create_async_engine

from adapters.db.repositories import SqlIncidents, SqlOutbox, SqlPlaybooks, SqlRequests, SqlTimeline
from core.errors import SignoffError
from core.ports import Clock, SystemClock

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnavailable(SignoffError):
    code = "database_unavailable"


class Database:
    """Owns the engine. On SQLite every write transaction is BEGIN IMMEDIATE and, inside one
    process, writers queue on an asyncio lock instead of spinning on SQLITE_BUSY."""

    def __init__(self, url: str, *, clock: Clock | None = None, echo: bool = False) -> None:
        self.url = url
        self.clock = clock or SystemClock()
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 30}
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        if self.dialect == "sqlite":
            _sqlite_pragmas(self.engine)

    @property
    def sole_worker(self) -> bool:
        """A SQLite file serves one signoff process, so nothing else can be executing."""
        return self.dialect == "sqlite"

    def uow(self, *, write: bool = True) -> SqlUnitOfWork:
        return SqlUnitOfWork(self, write=write)

    async def check(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(
                f"The database at {make_url(self.url).render_as_string(hide_password=True)} is unreachable "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); check SIGNOFF_DATABASE_URL."
            ) from None

    async def upgrade(self) -> None:
        await self.check()
        async with self.engine.begin() as conn:
            await conn.run_sync(_run_upgrade)
        log.info("db.upgraded", dialect=self.dialect)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _run_upgrade(connection: sa.Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (below), so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SqlUnitOfWork:
    requests: SqlRequests
    timeline: SqlTimeline
    outbox: SqlOutbox
    incidents: SqlIncidents
    playbooks: SqlPlaybooks

    def __init__(self, db: Database, *, write: bool) -> None:
        self._db = db
        self._write = write
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._locked = False

    async def __aenter__(self) -> Self:
        db = self._db
        if self._write and db.write_lock is not None:
            await db.write_lock.acquire()
            self._locked = True
        try:
            conn = await db.engine.connect()
            if self._write and db.dialect == "sqlite":
                conn = await conn.execution_options(sqlite_immediate=True)
            self._conn = conn
            self._tx = await conn.begin()
        except BaseException:
            await self._release()
            raise
        dialect = db.dialect
        self.requests = SqlRequests(conn, dialect)
        self.timeline = SqlTimeline(conn, dialect)
        self.outbox = SqlOutbox(conn, dialect, db.clock.now())
        self.incidents = SqlIncidents(conn, dialect)
        self.playbooks = SqlPlaybooks(conn, dialect)
        return self

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self._release()

    async def _release(self) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                await self._tx.rollback()
            if self._conn is not None:
                await self._conn.close()
        finally:
            self._tx = None
            self._conn = None
            if self._locked and self._db.write_lock is not None:
                self._db.write_lock.release()
                self._locked = False
