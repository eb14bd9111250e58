from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.postgres import postgres_database
from testkit.support import sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test that takes a database runs on a SQLite file and on PostgreSQL (asyncpg)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "signoff.db")
    else:
        yield from postgres_database()


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "signoff.db")


@pytest.fixture(autouse=True)
def _no_stray_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # A developer's signoff.toml or .env in the working directory must not change test outcomes.
    monkeypatch.chdir(tmp_path)
    for name in ("SIGNOFF_POLICY", "SIGNOFF_DATABASE_URL", "SIGNOFF_CLUSTER", "SIGNOFF_API_TOKEN",
                 "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_BOT_TOKEN",
                 "SIGNOFF_LLM_URL"):
        monkeypatch.delenv(name, raising=False)
    yield
