"""Where each stream of the timeline to an outside sink has got to: one row per stream."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from adapters.db import tables as t
from core.domain.events import format_at, parse_at
from core.ports import StreamPosition

_S = t.stream_positions.c


class SqlStreamPositions:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def position(self, name: str) -> StreamPosition:
        row = self._conn.execute(
            sa.select(_S.seq, _S.failures, _S.not_before, _S.last_error).where(_S.name == name)).first()
        if row is None:
            return StreamPosition()
        return StreamPosition(seq=int(row.seq), failures=int(row.failures),
                              not_before=parse_at(row.not_before) if row.not_before else None,
                              last_error=row.last_error)

    def advance(self, name: str, seq: int) -> None:
        self._ensure(name)
        self._conn.execute(sa.update(t.stream_positions).where(_S.name == name).values(
            seq=sa.case((_S.seq < seq, seq), else_=_S.seq), failures=0, not_before=None, last_error=None))

    def failed(self, name: str, *, error: str, failures: int, not_before: datetime) -> None:
        self._ensure(name)
        self._conn.execute(sa.update(t.stream_positions).where(_S.name == name).values(
            failures=failures, not_before=format_at(not_before), last_error=error))

    def _ensure(self, name: str) -> None:
        if self._conn.execute(sa.select(_S.name).where(_S.name == name)).first() is None:
            self._conn.execute(sa.insert(t.stream_positions).values(name=name, seq=0, failures=0))
