"""The database for the one-shot commands (`timeline`, `audit verify`, `db upgrade`, `playbooks`, the demo)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TextIO

from adapters.db.database import Database
from bot.audit import audit_verify as verify
from bot.settings import Settings


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
