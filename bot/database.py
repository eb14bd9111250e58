"""The database for the one-shot commands (`timeline`, `audit verify`, `db upgrade`, `playbooks`, the demo)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import TextIO

from adapters.db.database import Database
from bot.settings import Settings
from core.domain.events import verify_chain


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database at SIGNOFF_DATABASE_URL, migrated to the current schema, closed on exit."""
    db = Database(settings.database_url)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.dispose()


async def audit_verify(settings: Settings, out: TextIO | None = None) -> int:
    """`signoff audit verify`: 0 when the hash chain is intact, 1 (naming the first bad event) otherwise."""
    stream = out or sys.stdout
    async with open_database(settings) as db:
        # Streamed in the database thread: a million events are never all in memory.
        report = await db.read(lambda uow: verify_chain(uow.timeline.scan(), uow.timeline.head()))
    print(report.describe(), file=stream)
    return 0 if report.intact else 1
