"""Pages of history for the list endpoints: newest first, by keyset on indexed columns.

Requests page by their number (unique, increasing with creation). `since` becomes a lower bound on that
number through the creation-time index, so a narrow window never scans the whole table. Incidents and
playbooks page by (created_at, id). The audit chain is read by seq, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from adapters.db import tables as t
from core.domain.approvals import ApprovalRequest
from core.domain.events import format_at
from core.domain.incidents import Incident
from core.domain.listing import IncidentQuery, Page, PlaybookQuery, RequestQuery, decode_cursor, encode_cursor
from core.domain.playbooks import Playbook

_R = t.requests.c
_I = t.incidents.c
_P = t.playbooks.c
_T = t.timeline.c
Item = TypeVar("Item")
SKEW = timedelta(minutes=5)
_CHAIN = (_T.seq, _T.at, _T.type, _T.status, _T.title, _T.detail, _T.actor, _T.actor_role, _T.request_id,
          _T.incident_id, _T.prev_hash, _T.digest, _T.hash)
_CHAIN_NAMES = tuple(column.name for column in _CHAIN)
Row = sa.Row[tuple[str, str, str]]  # created_at, id, data


class SqlHistory:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def requests(self, query: RequestQuery) -> Page[ApprovalRequest]:
        statement = sa.select(_R.number, _R.data).order_by(_R.number.desc()).limit(query.limit + 1)
        if query.statuses:
            statement = statement.where(_R.status.in_([s.value for s in query.statuses]))
        if query.requester is not None:
            statement = statement.where(_R.requested_by == query.requester)
        if query.since is not None:
            # The first request by creation time, found on the creation-time index (min(number) would walk the
            # number index from the oldest request); the margin covers replicas whose clocks differ a little.
            first = (sa.select(_R.number).where(_R.created_at >= format_at(query.since - SKEW))
                     .order_by(_R.created_at, _R.number).limit(1).scalar_subquery())
            statement = statement.where(_R.created_at >= format_at(query.since), _R.number >= first)
        if query.cursor is not None:
            (number,) = decode_cursor(query.cursor, int)
            statement = statement.where(_R.number < number)
        rows = self._conn.execute(statement).all()
        items = [ApprovalRequest.model_validate_json(row.data) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(items, encode_cursor(int(rows[query.limit - 1].number)) if more else None)

    def incidents(self, query: IncidentQuery) -> Page[Incident]:
        statement = sa.select(_I.created_at, _I.id, _I.data)
        if query.statuses:
            statement = statement.where(_I.status.in_([s.value for s in query.statuses]))
        if query.since is not None:
            statement = statement.where(_I.created_at >= format_at(query.since))
        rows = self._newest_first(statement, _I.created_at, _I.id, query.cursor, query.limit)
        return self._page([Incident.model_validate_json(row.data) for row in rows], rows, query.limit)

    def playbooks(self, query: PlaybookQuery) -> Page[Playbook]:
        statement = sa.select(_P.created_at, _P.id, _P.data)
        if query.statuses:
            statement = statement.where(_P.status.in_([s.value for s in query.statuses]))
        rows = self._newest_first(statement, _P.created_at, _P.id, query.cursor, query.limit)
        return self._page([Playbook.model_validate_json(row.data) for row in rows], rows, query.limit)

    def chain(self, *, after: int, limit: int) -> list[dict[str, Any]]:
        # Straight from the rows, no models: these are the very texts the hashes cover (instants included).
        rows = self._conn.execute(sa.select(*_CHAIN).where(_T.seq > after).order_by(_T.seq).limit(limit))
        found = []
        for values in rows:
            item = dict(zip(_CHAIN_NAMES, values, strict=True))
            if item["digest"] is None:
                del item["digest"]  # hashed only where present (event_body)
            found.append(item)
        return found

    def _newest_first(self, statement: sa.Select[tuple[str, str, str]], at: sa.ColumnElement[str],
                      key: sa.ColumnElement[str], cursor: str | None, limit: int) -> Sequence[Row]:
        if cursor is not None:
            last_at, last_id = decode_cursor(cursor, str, str)
            statement = statement.where(sa.tuple_(at, key) < sa.tuple_(sa.literal(last_at), sa.literal(last_id)))
        return self._conn.execute(statement.order_by(at.desc(), key.desc()).limit(limit + 1)).all()

    @staticmethod
    def _page(items: list[Item], rows: Sequence[Row], limit: int) -> Page[Item]:
        if len(rows) <= limit:
            return Page(items, None)
        last = rows[limit - 1]
        return Page(items[:limit], encode_cursor(str(last.created_at), str(last.id)))
