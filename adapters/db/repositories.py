"""SQLAlchemy Core repositories behind the core's ports. Rows are JSON documents of the frozen
domain models plus the few columns that queries, constraints and compare-and-swap need."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.db import tables as t
from adapters.db.timeline import ChainHeadMissing, SqlTimeline
from core.domain.approvals import ApprovalRequest, RequestStatus, Signature
from core.domain.events import format_at
from core.domain.incidents import Incident
from core.domain.playbooks import Playbook, Vote
from core.domain.staleness import queue_key
from core.errors import AlreadySigned, ConcurrentUpdate

# Hot-path statements are built once: constructing a statement costs more than running it.
_R = t.requests.c
_NEXT_VALUE = (sa.update(t.sequences).where(t.sequences.c.name == sa.bindparam("sequence_name"))
               .values(value=t.sequences.c.value + 1).returning(t.sequences.c.value))
_INSERT_SEQUENCE = sa.insert(t.sequences)
_INSERT_REQUEST = sa.insert(t.requests)
_GET_REQUEST = sa.select(_R.data).where(_R.id == sa.bindparam("request_id"))
_GET_REQUEST_LOCKED = _GET_REQUEST.with_for_update()
_REQUEST_COLUMNS = ("status", "version", "requested_by", "incident_id", "created_at", "expires_at", "stale_at", "data",
                   "cluster", "target_key", "approved_at", "review_status", "review_by")
# One operation per target at a time, in the order approved: another request on the same target is executing or
# verifying, or was approved before this one (the claim refuses while one is; core/domain/pinning.py).
_O = t.requests.alias("other").c
_AHEAD = sa.and_(
    _O.target_key == sa.bindparam("target_key"), _O.id != sa.bindparam("request_id"),
    sa.or_(_O.status.in_([RequestStatus.executing.value, RequestStatus.verifying.value]),
           sa.and_(_O.status == RequestStatus.approved.value,
                   sa.or_(_O.approved_at < sa.bindparam("approved_at"),
                          sa.and_(_O.approved_at == sa.bindparam("approved_at"),
                                  _O.number < sa.bindparam("own_number"))))))
_AHEAD_OF = sa.select(_O.id).where(_AHEAD).order_by(_O.number).limit(1)
_UPDATE_REQUEST = (sa.update(t.requests)
                   .where(_R.id == sa.bindparam("request_id"), _R.version == sa.bindparam("expected_version"))
                   .values({name: sa.bindparam(name) for name in _REQUEST_COLUMNS}))
_CLAIM_REQUEST = (sa.update(t.requests)
                  .where(_R.id == sa.bindparam("request_id"), _R.status == RequestStatus.approved.value,
                         _R.version == sa.bindparam("expected_version"), ~sa.exists(_AHEAD_OF))
                  .values({name: sa.bindparam(name) for name in (*_REQUEST_COLUMNS, "claimed_by", "lease_until")}))
_INSERT_SIGNATURE = sa.insert(t.signatures)
_WITH_STATUS = (sa.select(_R.data).where(_R.status.in_(sa.bindparam("statuses", expanding=True)))
                .order_by(_R.number).limit(sa.bindparam("limit")))
_RENEW_LEASE = (sa.update(t.requests)
                .where(_R.id == sa.bindparam("request_id"), _R.status == RequestStatus.executing.value,
                       _R.claimed_by == sa.bindparam("worker"), _R.lease_until > sa.bindparam("now"))
                .values(lease_until=sa.bindparam("until")))
_OVERDUE = (sa.select(_R.id).where(sa.or_(
    sa.and_(_R.status == RequestStatus.pending.value, _R.expires_at <= sa.bindparam("now")),
    sa.and_(_R.status == RequestStatus.approved.value, _R.stale_at < sa.bindparam("now")),
    sa.and_(_R.status == RequestStatus.executing.value, _R.lease_until <= sa.bindparam("now")),
)).order_by(_R.number).limit(500))
_I = t.incidents.c
_INCIDENT_COLUMNS = ("fingerprint", "status", "version", "updated_at", "data", "open_key", "created_at")
_INSERT_INCIDENT = sa.insert(t.incidents)
_GET_INCIDENT = sa.select(_I.data).where(_I.id == sa.bindparam("incident_id"))
_GET_INCIDENT_LOCKED = _GET_INCIDENT.with_for_update()
_INCIDENT_BY_FINGERPRINT = sa.select(_I.data).where(_I.fingerprint == sa.bindparam("fingerprint"))
_INCIDENT_BY_OPEN_KEY = sa.select(_I.data).where(_I.open_key == sa.bindparam("open_key"))
_IA = t.incident_alerts.c
_INCIDENT_OF_ALERT = sa.select(_IA.incident_id, _IA.firing).where(_IA.alert_key == sa.bindparam("alert_key"))
_UPDATE_INCIDENT = (sa.update(t.incidents)
                    .where(_I.id == sa.bindparam("incident_id"), _I.version == sa.bindparam("expected_version"))
                    .values({name: sa.bindparam(name) for name in _INCIDENT_COLUMNS}))


class _Repo:
    def __init__(self, conn: sa.Connection, dialect: str) -> None:
        self._conn = conn
        self._dialect = dialect

    @property
    def _locks_rows(self) -> bool:
        return self._dialect == "postgresql"

    def _next(self, name: str) -> int:
        value = self._conn.execute(_NEXT_VALUE, {"sequence_name": name}).scalar_one_or_none()
        if value is None:
            self._conn.execute(_INSERT_SEQUENCE, {"name": name, "value": 1})
            return 1
        return int(value)


def _number(request_id: str) -> int:
    return int(request_id.removeprefix("R-"))
def open_review_columns(request: ApprovalRequest) -> dict[str, object]:
    record = request.breakglass
    if record is None or record.cleared:
        return {"review_status": None, "review_by": None}
    return {"review_status": record.status.value, "review_by": record.by}


__all__ = ["ChainHeadMissing", "SqlIncidents", "SqlPlaybooks", "SqlRequests", "SqlTimeline"]


class SqlRequests(_Repo):
    def next_id(self) -> str:
        return f"R-{self._next('request')}"

    def add(self, request: ApprovalRequest) -> None:
        self._conn.execute(_INSERT_REQUEST, {
            "id": request.id, "number": int(request.id.removeprefix("R-")), **self._columns(request),
        })

    @staticmethod
    def _columns(request: ApprovalRequest) -> dict[str, object]:
        stale_at = None
        if request.approved_at is not None:
            stale_at = format_at(request.approved_at + timedelta(seconds=request.expire_after_s))
        return {
            "status": request.status.value,
            "version": request.version,
            "requested_by": request.requested_by,
            "incident_id": request.incident_id,
            "created_at": format_at(request.created_at),
            "expires_at": format_at(request.expires_at),
            "stale_at": stale_at,
            "data": request.model_dump_json(),
            "cluster": request.cluster,
            "target_key": queue_key(request),
            "approved_at": format_at(request.approved_at) if request.approved_at is not None else None,
            **open_review_columns(request),
        }

    def get(self, request_id: str, *, lock: bool = False) -> ApprovalRequest | None:
        query = _GET_REQUEST_LOCKED if lock and self._locks_rows else _GET_REQUEST
        data = self._conn.execute(query, {"request_id": request_id}).scalar_one_or_none()
        return ApprovalRequest.model_validate_json(data) if data is not None else None

    def update(self, request: ApprovalRequest, *, expected_version: int) -> None:
        result = self._conn.execute(_UPDATE_REQUEST, {
            "request_id": request.id, "expected_version": expected_version, **self._columns(request),
        })
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"{request.id} changed while this was being decided; try again.")

    def add_signature(self, request_id: str, signature: Signature) -> None:
        try:
            self._conn.execute(_INSERT_SIGNATURE, {
                "request_id": request_id, "person": signature.person, "via": signature.via,
                "at": format_at(signature.at),
            })
        except IntegrityError:
            raise AlreadySigned(
                f"You already signed {request_id}; one person signs once, whichever chat they use.", request_id,
            ) from None

    def claim(self, request: ApprovalRequest, *, expected_version: int, worker: str,
                    lease_until: datetime) -> bool:
        result = self._conn.execute(_CLAIM_REQUEST, {
            "request_id": request.id, "expected_version": expected_version, **self._columns(request),
            "claimed_by": worker, "lease_until": format_at(lease_until), "own_number": _number(request.id),
        })
        return result.rowcount == 1

    def ahead_of(self, request: ApprovalRequest) -> str | None:
        """The request this one waits for on its target (executing, verifying, or approved before it)."""
        key = queue_key(request)
        if key is None or request.approved_at is None:
            return None
        return self._conn.execute(_AHEAD_OF, {
            "target_key": key, "request_id": request.id, "approved_at": format_at(request.approved_at),
            "own_number": _number(request.id),
        }).scalar_one_or_none()
    def open_reviews(self, by: str | None = None) -> list[ApprovalRequest]:
        """Requests whose break glass still awaits its review (all, or `by` that person's), oldest first."""
        query = sa.select(_R.data).where(_R.review_status.is_not(None))
        if by is not None:
            query = query.where(_R.review_by == by)
        rows = self._conn.execute(query.order_by(_R.number))
        return [ApprovalRequest.model_validate_json(row[0]) for row in rows]

    def with_status(self, statuses: Sequence[RequestStatus], limit: int = 50) -> list[ApprovalRequest]:
        rows = self._conn.execute(_WITH_STATUS, {"statuses": [s.value for s in statuses], "limit": limit})
        return [ApprovalRequest.model_validate_json(row[0]) for row in rows]

    def overdue_ids(self, now: datetime) -> list[str]:
        rows = self._conn.execute(_OVERDUE, {"now": format_at(now)})
        return [row[0] for row in rows]

    def renew_lease(self, request_id: str, *, worker: str, until: datetime, now: datetime) -> bool:
        result = self._conn.execute(_RENEW_LEASE, {
            "request_id": request_id, "worker": worker, "now": format_at(now), "until": format_at(until)})
        return result.rowcount == 1

    def lease_lapsed(self, request_id: str, now: datetime) -> bool:
        c = t.requests.c
        row = self._conn.execute(sa.select(c.lease_until).where(c.id == request_id)).first()
        return row is None or row[0] is None or row[0] <= format_at(now)

    def signers(self, request_id: str) -> list[str]:
        c = t.signatures.c
        rows = self._conn.execute(sa.select(c.person).where(c.request_id == request_id).order_by(c.person))
        return [row[0] for row in rows]

    def scan(self, batch: int = 500) -> Iterator[ApprovalRequest]:
        last = 0
        c = t.requests.c
        while True:
            rows = self._conn.execute(sa.select(c.number, c.data).where(c.number > last).order_by(c.number)
                                      .limit(batch)).all()
            if not rows:
                return
            for number, data in rows:
                last = number
                yield ApprovalRequest.model_validate_json(data)

    def counts(self) -> dict[str, int]:
        rows = self._conn.execute(
            sa.select(t.requests.c.status, sa.func.count()).group_by(t.requests.c.status)
        )
        return {row[0]: int(row[1]) for row in rows}


class SqlIncidents(_Repo):
    def next_id(self) -> str:
        # People also name incidents (`incident=INC-12`); skip numbers they already took.
        while True:
            candidate = f"INC-{self._next('incident')}"
            if self.get(candidate) is None:
                return candidate

    def add(self, incident: Incident) -> None:
        self._conn.execute(_INSERT_INCIDENT, {"id": incident.id, **self._columns(incident)})

    @staticmethod
    def _columns(incident: Incident) -> dict[str, object]:
        return {
            "fingerprint": incident.fingerprint, "status": incident.status.value, "version": incident.version,
            "updated_at": format_at(incident.updated_at), "data": incident.model_dump_json(),
            "open_key": incident.open_key, "created_at": format_at(incident.created_at),
        }

    def get(self, incident_id: str, *, lock: bool = False) -> Incident | None:
        query = _GET_INCIDENT_LOCKED if lock and self._locks_rows else _GET_INCIDENT
        data = self._conn.execute(query, {"incident_id": incident_id}).scalar_one_or_none()
        return Incident.model_validate_json(data) if data is not None else None

    def by_fingerprint(self, fingerprint: str) -> Incident | None:
        data = self._conn.execute(_INCIDENT_BY_FINGERPRINT, {"fingerprint": fingerprint}).scalar_one_or_none()
        return Incident.model_validate_json(data) if data is not None else None

    def update(self, incident: Incident) -> None:
        result = self._conn.execute(_UPDATE_INCIDENT, {
            "incident_id": incident.id, "expected_version": incident.version - 1, **self._columns(incident),
        })
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"{incident.id} changed while this was being decided; try again.")

    def by_open_key(self, key: str, *, lock: bool = False) -> Incident | None:
        query = _INCIDENT_BY_OPEN_KEY.with_for_update() if lock and self._locks_rows else _INCIDENT_BY_OPEN_KEY
        data = self._conn.execute(query, {"open_key": key}).scalar_one_or_none()
        return Incident.model_validate_json(data) if data is not None else None

    def alert_incident(self, alert_key: str) -> tuple[str, bool] | None:
        row = self._conn.execute(_INCIDENT_OF_ALERT, {"alert_key": alert_key[:128]}).first()
        return (str(row[0]), bool(row[1])) if row is not None else None

    def add_alerts(self, incident_id: str, alerts: Sequence[tuple[str, str | None]]) -> int:
        """Records (alert key, pod) pairs under the incident; returns how many pods are new to it."""
        pods = {pod for _, pod in alerts if pod}
        known: set[str] = set()
        if pods:
            known = {str(row[0]) for row in self._conn.execute(
                sa.select(_IA.pod).where(_IA.incident_id == incident_id, _IA.pod.in_(sorted(pods))).distinct())}
        self._conn.execute(sa.insert(t.incident_alerts), [
            {"alert_key": key[:128], "incident_id": incident_id, "pod": pod[:256] if pod else None, "firing": True}
            for key, pod in alerts
        ])
        return len(pods - known)

    def alerts_resolved(self, alert_keys: Sequence[str]) -> dict[str, int]:
        """Marks firing alerts resolved; returns, per incident, how many of its alerts stopped firing."""
        keys = sorted({key[:128] for key in alert_keys})
        rows = self._conn.execute(
            sa.select(_IA.alert_key, _IA.incident_id).where(_IA.alert_key.in_(keys), _IA.firing.is_(True))).all()
        if not rows:
            return {}
        self._conn.execute(sa.update(t.incident_alerts).where(_IA.alert_key.in_([r[0] for r in rows]))
                           .values(firing=False))
        counts: dict[str, int] = {}
        for _, incident_id in rows:
            counts[str(incident_id)] = counts.get(str(incident_id), 0) + 1
        return counts

    def list_open(self, limit: int = 50) -> list[Incident]:
        rows = self._conn.execute(
            sa.select(t.incidents.c.data).where(t.incidents.c.status.in_(["open", "investigating"]))
            .order_by(t.incidents.c.updated_at.desc()).limit(limit)
        )
        return [Incident.model_validate_json(row[0]) for row in rows]


def playbook_identity(playbook: Playbook) -> str:
    key = json.dumps(
        {"trigger": playbook.trigger.model_dump(mode="json"), "template": playbook.template}, sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()


class SqlPlaybooks(_Repo):
    def next_id(self) -> str:
        return f"PB-{self._next('playbook')}"

    def add(self, playbook: Playbook) -> None:
        self._conn.execute(sa.insert(t.playbooks).values(
            id=playbook.id, status=playbook.status.value, version=playbook.version,
            identity=playbook_identity(playbook), data=playbook.model_dump_json(),
            created_at=format_at(playbook.created_at),
        ))

    def get(self, playbook_id: str, *, lock: bool = False) -> Playbook | None:
        query = sa.select(t.playbooks.c.data).where(t.playbooks.c.id == playbook_id)
        if lock and self._locks_rows:
            query = query.with_for_update()
        data = (self._conn.execute(query)).scalar_one_or_none()
        return Playbook.model_validate_json(data) if data is not None else None

    def find_identical(self, playbook: Playbook) -> Playbook | None:
        data = (self._conn.execute(
            sa.select(t.playbooks.c.data).where(t.playbooks.c.identity == playbook_identity(playbook))
        )).scalar_one_or_none()
        return Playbook.model_validate_json(data) if data is not None else None

    def update(self, playbook: Playbook) -> None:
        result = self._conn.execute(
            sa.update(t.playbooks)
            .where(t.playbooks.c.id == playbook.id, t.playbooks.c.version == playbook.version - 1)
            .values(status=playbook.status.value, version=playbook.version, data=playbook.model_dump_json())
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"{playbook.id} changed while this was being decided; try again.")

    def add_vote(self, playbook_id: str, vote: Vote) -> bool:
        """False when this person already voted on this playbook (the constraint decides)."""
        try:
            with self._conn.begin_nested():
                self._conn.execute(sa.insert(t.playbook_votes).values(
                    playbook_id=playbook_id, person=vote.person, approve=vote.approve, at=format_at(vote.at),
                ))
        except IntegrityError:
            return False
        return True

    def all(self) -> list[Playbook]:
        rows = self._conn.execute(sa.select(t.playbooks.c.data))
        found = [Playbook.model_validate_json(row[0]) for row in rows]
        return sorted(found, key=lambda p: int(p.id.removeprefix("PB-")) if p.id[3:].isdigit() else 0)
