"""`signoff run` with every SQLite statement counted, by kind and table (sqlite3's trace callback).

    python bench/counted.py OUT.json [signoff arguments, default: run]

Used by `bench/e2e_load.py`: counting starts at the first SIGUSR1 (the bench sends it when its measured load
begins) and the counts are written to OUT as JSON at the second (when the load ends). A statement is keyed by
its verb and, for INSERT / UPDATE / DELETE / SELECT, its first table: `INSERT timeline`, `BEGIN`, `COMMIT`.
The callback costs about a microsecond per statement; `bench/e2e_floor.py` traces its own statements the same way.
"""

from __future__ import annotations

import json
import re
import runpy
import signal
import sqlite3
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]  # bench/ itself: its core.py would shadow the package `core` (PYTHONPATH picks the bot)

TABLE = {"INSERT": re.compile(r"\bINTO\s+[\"`]?(\w+)", re.I), "UPDATE": re.compile(r"^\s*UPDATE\s+[\"`]?(\w+)", re.I),
         "DELETE": re.compile(r"\bFROM\s+[\"`]?(\w+)", re.I), "SELECT": re.compile(r"\bFROM\s+[\"`]?(\w+)", re.I)}


def statement_key(sql: str) -> str:
    """`INSERT timeline`, `SELECT requests`, `BEGIN`, `COMMIT`: the verb, and the table where it has one."""
    verb = (sql.split(None, 1) or ["?"])[0].upper()
    table = TABLE["SELECT" if verb == "WITH" else verb].search(sql) if verb in (*TABLE, "WITH") else None
    return f"{'SELECT' if verb == 'WITH' else verb} {table.group(1)}" if table else verb


class Census:
    """Counts the statements of every connection it is attached to, while `on`."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.on = False
        self._lock = threading.Lock()

    def attach(self, connection: sqlite3.Connection) -> None:
        connection.set_trace_callback(self._traced)

    def _traced(self, sql: str) -> None:
        if self.on:
            key = statement_key(sql)
            with self._lock:
                self.counts[key] += 1


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["bot", *(sys.argv[2:] or ["run"])]
    census = Census()

    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            census.attach(dbapi_connection)

    event.listen(Pool, "connect", on_connect)

    def toggle(*_: Any) -> None:
        if not census.on:
            census.on = True
            return
        census.on = False
        Path(out).write_text(json.dumps(dict(census.counts)))

    signal.signal(signal.SIGUSR1, toggle)
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
