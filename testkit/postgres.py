"""A throwaway PostgreSQL database per test or bench run, on the server the machines run for the tests."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from functools import cache

import pytest

# The machines (yours and CI's) run PostgreSQL 15 here with trust authentication.
POSTGRES_HOST = os.environ.get("SIGNOFF_TEST_POSTGRES_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("SIGNOFF_TEST_POSTGRES_PORT", "5432"))
POSTGRES_USER = os.environ.get("SIGNOFF_TEST_POSTGRES_USER", "postgres")


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, database="postgres",
                                 timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@cache
def postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    try:
        asyncio.run(_admin("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def postgres_database() -> Iterator[str]:
    """A fresh database per test, dropped afterwards."""
    reason = postgres_unavailable()
    if reason is not None:
        message = f"PostgreSQL at {POSTGRES_HOST}:{POSTGRES_PORT} is not reachable ({reason})"
        if os.environ.get("SIGNOFF_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + "; SIGNOFF_REQUIRE_POSTGRES=1 says these tests must run here")
        pytest.skip(message + ": the PostgreSQL variant is skipped")
    name = f"signoff_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
