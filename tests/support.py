"""Shared test helpers: a clock tests can move, and the app graph on a temporary SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.bootstrap import App, bootstrap
from bot.settings import Settings
from core.domain.policy import Policy
from core.domain.policy_file import parse_policy


class MovableClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def make_settings(database_url: str, **values: Any) -> Settings:
    return Settings(SIGNOFF_DATABASE_URL=database_url, SIGNOFF_CLUSTER="sandbox", **values)


@contextlib.asynccontextmanager
async def running_app(settings: Settings, *, policy: Policy | str | None = None, clock: Any = None,
                      **kwargs: Any) -> AsyncIterator[App]:
    if isinstance(policy, str):
        policy = parse_policy(policy, "test-policy.toml")
    async with bootstrap(settings, policy=policy or Policy(), clock=clock, min_update_interval=0.0,
                         **kwargs) as app:
        yield app
