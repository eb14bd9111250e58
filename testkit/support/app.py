"""A clock tests can move, and the app graph on a temporary database with the hooked sandbox."""

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
from testkit.fakes.sandbox import hooked_cluster


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
    async with hooked_app(settings, policy=policy or Policy(), clock=clock, min_update_interval=0.0,
                          **kwargs) as app:
        yield app


@contextlib.asynccontextmanager
async def hooked_app(settings: Settings, **kwargs: Any) -> AsyncIterator[App]:
    """`bootstrap`, but with SIGNOFF_CLUSTER=sandbox the sandbox is a `HookedSandbox` (request
    recording, faults), at `app.sandbox` as usual."""
    if settings.cluster != "sandbox" or "cluster" in kwargs:
        async with bootstrap(settings, **kwargs) as app:
            yield app
        return
    async with hooked_cluster(settings.kube_timeout_s) as (sandbox, cluster), \
            bootstrap(settings, cluster=cluster, **kwargs) as app:
        app.sandbox = sandbox
        yield app
