"""SIGKILL at random points of request lifecycles (CI size; bench/crash.py runs 200)."""

from __future__ import annotations

from pathlib import Path

from testkit.crash import run_crash_test
from testkit.support import sqlite_url


async def test_random_sigkills_lose_nothing_and_execute_nothing_twice(tmp_path: Path) -> None:
    report = await run_crash_test(tmp_path, sqlite_url(tmp_path / "crash.db"), lifecycles=16, seed=11,
                                  mean_kill_interval=1.0)
    print(report.describe())
    assert report.kills >= 2, report.describe()
    assert report.clean, report.describe()
    assert len(report.request_ids) == 16
