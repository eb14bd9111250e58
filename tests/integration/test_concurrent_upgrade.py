"""Replicas started together on a fresh PostgreSQL database all migrate it: one runs the migrations, the others
wait and find the schema current (found while testing issue 18: `relation ... already exists` at start-up)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.db.database import Database


@pytest.mark.postgres
async def test_replicas_upgrading_a_fresh_database_at_once_all_succeed(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serves one process")
    databases = [Database(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.upgrade() for db in databases), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
    finally:
        for db in databases:
            await db.dispose()
