"""The database for the one-shot commands (`timeline`, `audit verify`, `db upgrade`, `playbooks`, the demo)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TextIO

import structlog
from sqlalchemy.engine import make_url

from adapters.db.database import Database
from bot.audit import audit_rekey as rekey
from bot.audit import audit_verify as verify
from bot.settings import Settings
from core.domain.integrity import key_problem
from core.errors import SignoffError

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database at SIGNOFF_DATABASE_URL, migrated to the current schema, closed on exit."""
    db = Database(settings.database_url, audit_key=settings.audit_key_bytes)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.dispose()


async def audit_verify(settings: Settings, out: TextIO | None = None) -> int:
    """`signoff audit verify` (bot/audit.py)."""
    async with open_database(settings) as db:
        return await verify(db, settings.audit_key_bytes, out)


async def audit_rekey(settings: Settings, out: TextIO | None = None) -> int:
    """`signoff audit rekey` (bot/audit.py)."""
    async with open_database(settings) as db:
        return await rekey(db, settings.audit_key_bytes, out)


async def ensure_audit_key(settings: Settings) -> None:
    """`signoff run` and `signoff console` start only on a chain whose key epoch is the configured key.

    When it is not, and the chain so far verifies under the key it was hashed with (none: the key is being
    turned on; or SIGNOFF_AUDIT_PREVIOUS_KEY), the key change is sealed here as `signoff audit rekey` would
    (it is the same code): turning the key on needs no extra step. Otherwise the start is refused, naming
    `signoff audit rekey` (a rotation whose previous key is not given, a removed key, a damaged chain)."""
    key = settings.audit_key_bytes
    async with open_database(settings) as db:
        problem = await db.read(lambda uow: key_problem(uow.timeline, key))
        if problem is None:
            return
        said = io.StringIO()
        if await rekey(db, key, said) == 0:
            log.warning("audit.rekeyed_at_start", detail=said.getvalue().strip())
            return
    raise SignoffError(problem)


def sqlite_file(url: str) -> Path | None:
    """The SQLite file a database URL names; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().resolve()


@contextlib.contextmanager
def sole_process(settings: Settings) -> Iterator[None]:
    """`signoff run` and `signoff console` hold a SQLite file for their lifetime (an exclusive flock on
    `<file>.lock`): a second one would take the first one's executions for crashed ones and mark them
    interrupted. `signoff audit rekey` takes it too (the service must be stopped for a key change). The other
    short commands (`timeline`, `audit verify`, `db upgrade`, `check-config`, `playbooks`) do not take it; the
    demo uses a temporary file of its own. PostgreSQL needs no such lock (leases and claims)."""
    path = sqlite_file(settings.database_url)
    if path is None:
        yield
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = Path(f"{path}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise SignoffError(
                f"The SQLite database {path} is in use by another signoff process"
                + (f" (process {holder})" if holder.isdigit() else "")
                + "; a SQLite file serves one `signoff run` or `signoff console` at a time: stop that one first, "
                "or use PostgreSQL (SIGNOFF_DATABASE_URL=postgresql+asyncpg://…) to run several replicas."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
