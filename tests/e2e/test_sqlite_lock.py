"""A SQLite file serves one long-running signoff process (issue 18, defect 5).

A second `signoff run` (or `signoff console`) on the same file would run its start-up recovery and mark the first
one's live executions interrupted. It is refused with one sentence and exit 2; the short commands (`audit verify`,
`db upgrade`, `timeline`, `check-config`) still work while the file is held. Real subprocesses throughout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t" * 32


def _env(database: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
    env.update({"PYTHONPATH": str(ROOT), "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                "SIGNOFF_CLUSTER": "sandbox", **extra})
    return env


def _signoff(database: Path, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          env=_env(database, **extra), cwd=database.parent, timeout=120, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_run(database: Path) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=_env(database, SIGNOFF_API_TOKEN=TOKEN, SIGNOFF_HTTP_PORT=str(port), SIGNOFF_HTTP_HOST="127.0.0.1"),
        cwd=database.parent,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("signoff run did not come up")


def _refused(result: subprocess.CompletedProcess[str], database: Path) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(database.resolve()) in lines[0] and "PostgreSQL" in lines[0], lines[0]


def test_a_second_process_on_a_held_sqlite_file_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "signoff.db"
    run, _ = _start_run(database)
    try:
        _refused(_signoff(database, "console", stdin="status R-1\n"), database)
        second = _signoff(database, "run", SIGNOFF_API_TOKEN=TOKEN, SIGNOFF_HTTP_PORT=str(_free_port()))
        _refused(second, database)
        # The short commands read (or migrate) and leave: they do not need the file to themselves.
        for args in (("audit", "verify"), ("db", "upgrade"), ("check-config",)):
            result = _signoff(database, *args)
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        # A key change needs the service stopped (it would go on hashing with the old key).
        _refused(_signoff(database, "audit", "rekey", SIGNOFF_AUDIT_KEY="k" * 32), database)
        assert run.poll() is None  # the first one is untouched
    finally:
        run.terminate()
        run.communicate(timeout=60)
    # Once it has stopped, the file is free again.
    result = _signoff(database, "console", stdin="help\n")
    assert result.returncode == 0, result.stderr


def test_a_run_started_while_a_console_holds_the_file_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "signoff.db"
    console = subprocess.Popen([sys.executable, "-m", "bot", "console"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(database),
                               cwd=tmp_path)
    try:
        # A console reading a script waits for its end of input; until then it holds the file. Wait until it has
        # opened the database (`db upgrade` creates the schema on first use, so look for the console's lock).
        deadline = time.monotonic() + 60
        while not (tmp_path / "signoff.db.lock").exists() or str(console.pid) not in \
                (tmp_path / "signoff.db.lock").read_text():
            assert time.monotonic() < deadline and console.poll() is None
            time.sleep(0.1)
        second = _signoff(database, "run", SIGNOFF_API_TOKEN=TOKEN, SIGNOFF_HTTP_PORT=str(_free_port()))
        _refused(second, database)
        assert f"process {console.pid}" in second.stderr
    finally:
        _, err = console.communicate("help\n", timeout=60)
    assert console.returncode == 0, err


def test_only_a_sqlite_file_is_locked() -> None:
    from bot.database import sqlite_file

    assert sqlite_file("postgresql+asyncpg://signoff@db/signoff") is None
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_file("sqlite+aiosqlite:///data/signoff.db") == (Path("data") / "signoff.db").resolve()
