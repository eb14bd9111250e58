"""Incidents: what went wrong, which requests tried to fix it, and how well that worked.

Pure transitions, like the approval state machine: each returns the new incident and the
timeline events it caused, or raises a typed refusal.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from core.domain.events import EventType, NewEvent
from core.domain.text import clean_text, truncate
from core.errors import NotPending, ParseError

MAX_LABELS = 64
MAX_LABEL_VALUE = 512
MAX_SYMPTOM = 2000


class IncidentStatus(StrEnum):
    open = "open"
    investigating = "investigating"
    resolved = "resolved"
    closed = "closed"

    @property
    def done(self) -> bool:
        return self in (IncidentStatus.resolved, IncidentStatus.closed)


class Incident(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    status: IncidentStatus = IncidentStatus.open
    alert_name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    symptom: str = ""
    fingerprint: str | None = None
    source: str = "manual"
    effectiveness: int | None = None
    request_ids: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    version: int = 0
    # Correlation (docs/incidents.md): alerts with the same key join this incident while it is open.
    correlation_key: str | None = None
    workload: str | None = None
    alert_count: int = 0
    firing_count: int = 0
    pod_count: int = 0

    @property
    def subject(self) -> str:
        return subject_of(self.labels) or self.title

    @property
    def open_key(self) -> str | None:
        """The key the database keeps unique among open incidents (NULL once resolved)."""
        return self.correlation_key if not self.status.done else None

    @property
    def scope(self) -> str:
        """`47 alerts on 47 pods of deployment/api`: what the card and the listings say."""
        alerts = f"{self.alert_count} alert" + ("s" if self.alert_count != 1 else "")
        where = self.workload or self.subject
        if self.pod_count:
            pods = f"{self.pod_count} pod" + ("s" if self.pod_count != 1 else "")
            return f"{alerts} on {pods}" + (f" of {where}" if self.workload else "")
        return f"{alerts} on {where}" if where else alerts


def subject_of(labels: dict[str, str]) -> str:
    """Where an alert is, for people: `prod/api-7d9f` or `node-1`."""
    namespace = labels.get("namespace")
    for key in ("deployment", "statefulset", "daemonset", "pod", "horizontalpodautoscaler", "job_name",
                "service", "node"):
        if key in labels:
            return f"{namespace}/{labels[key]}" if namespace and key != "node" else labels[key]
    return namespace or ""


class IncidentChange(NamedTuple):
    incident: Incident
    events: tuple[NewEvent, ...]


def _event(incident: Incident, at: datetime, type_: EventType, title: str, *, actor: str = "signoff",
           role: str = "system", detail: str = "", request_id: str | None = None) -> NewEvent:
    return NewEvent(at=at, type=type_, status=str(incident.status), title=title, detail=detail, actor=actor,
                    actor_role=role, incident_id=incident.id, request_id=request_id)


# Kept first when an alert carries more labels than are stored: they say what broke and where.
_KEY_LABELS = ("alertname", "namespace", "pod", "container", "deployment", "statefulset", "daemonset", "node",
               "job", "severity", "service")
MAX_LABEL_NAME = 128


def clean_labels(labels: dict[str, object]) -> dict[str, str]:
    """Alert labels as stored: clean strings, bounded in number and size, so a payload cannot bloat a row.

    Oversize names and values are truncated with a marker; past `MAX_LABELS`, the labels that locate the
    problem are kept first, then the rest by name.
    """
    cleaned: dict[str, str] = {}
    for key, value in labels.items():
        name = truncate(clean_text(str(key)), MAX_LABEL_NAME)
        cleaned[name] = truncate(clean_text(str(value)), MAX_LABEL_VALUE)
    if len(cleaned) <= MAX_LABELS:
        return cleaned
    order = [k for k in _KEY_LABELS if k in cleaned] + sorted(k for k in cleaned if k not in _KEY_LABELS)
    return {k: cleaned[k] for k in order[:MAX_LABELS]}


def open_incident(
    *, incident_id: str, title: str, at: datetime, source: str, alert_name: str | None = None,
    labels: dict[str, str] | None = None, symptom: str = "", fingerprint: str | None = None,
    actor: str = "signoff", correlation_key: str | None = None, workload: str | None = None,
    alerts: int = 0, pods: int = 0,
) -> IncidentChange:
    incident = Incident(
        id=incident_id, title=title[:300], alert_name=alert_name, labels=dict(labels or {}),
        symptom=symptom[:MAX_SYMPTOM], fingerprint=fingerprint, source=source, created_at=at, updated_at=at,
        correlation_key=correlation_key, workload=workload, alert_count=alerts, firing_count=alerts,
        pod_count=pods,
    )
    detail = f"from {source}" + (f": {alert_name} on {incident.subject}" if alert_name else "")
    return IncidentChange(incident, (_event(incident, at, EventType.incident_opened, f"incident opened: {title}",
                                            actor=actor, detail=detail),))


def link_request(incident: Incident, request_id: str, at: datetime) -> IncidentChange:
    if request_id in incident.request_ids:
        return IncidentChange(incident, ())
    status = IncidentStatus.investigating if incident.status is IncidentStatus.open else incident.status
    updated = incident.model_copy(update={
        "request_ids": (*incident.request_ids, request_id), "status": status, "updated_at": at,
        "version": incident.version + 1,
    })
    return IncidentChange(updated, (_event(updated, at, EventType.incident_linked,
                                           f"{request_id} linked to {incident.id}", request_id=request_id),))


def resolve(incident: Incident, *, by: str, score: int, at: datetime, via: str) -> IncidentChange:
    """A person says the incident is over and how well the fix worked (1–5)."""
    if not 1 <= score <= 5:
        raise ParseError(f"score must be 1 to 5, not {score}; 5 means the fix worked perfectly.")
    if incident.effectiveness is not None:
        raise NotPending(
            f"{incident.id} was already rated {incident.effectiveness}/5"
            + (f" by {incident.resolved_by}" if incident.resolved_by else "") + "; a rating is given once.",
            None,
        )
    already = incident.status.done
    updated = incident.model_copy(update={
        "status": IncidentStatus.resolved if not already else incident.status,
        "effectiveness": score, "updated_at": at, "resolved_at": incident.resolved_at or at,
        "resolved_by": by, "version": incident.version + 1,
    })
    events = []
    if not already:
        events.append(_event(updated, at, EventType.incident_resolved, f"{by} resolved {incident.id}",
                             actor=by, role="responder", detail=f"via {via}"))
    events.append(_event(updated, at, EventType.rated, f"{by} rated the fix {score}/5", actor=by,
                         role="responder", detail=f"via {via}"))
    return IncidentChange(updated, tuple(events))


def alerts_joined(incident: Incident, *, alerts: int, new_pods: int, at: datetime) -> IncidentChange:
    """More alerts about the same problem: counted, one event for the batch, no new incident."""
    if alerts <= 0:
        return IncidentChange(incident, ())
    updated = incident.model_copy(update={
        "alert_count": incident.alert_count + alerts, "firing_count": incident.firing_count + alerts,
        "pod_count": incident.pod_count + new_pods, "updated_at": at, "version": incident.version + 1,
    })
    return IncidentChange(updated, (_event(updated, at, EventType.incident_updated,
                                           f"{alerts} more alert(s) joined {incident.id}",
                                           actor="alertmanager", detail=updated.scope),))


def alert_resolved(incident: Incident, *, at: datetime, alerts: int = 1) -> IncidentChange:
    """Alertmanager says alerts cleared; the incident resolves when none of its alerts still fires.

    The effectiveness still comes from people.
    """
    if incident.status.done:
        return IncidentChange(incident, ())
    firing = max(0, incident.firing_count - alerts)
    if firing > 0:
        return IncidentChange(incident.model_copy(update={
            "firing_count": firing, "updated_at": at, "version": incident.version + 1}), ())
    updated = incident.model_copy(update={
        "status": IncidentStatus.resolved, "updated_at": at, "resolved_at": at, "resolved_by": "alertmanager",
        "version": incident.version + 1, "firing_count": 0,
    })
    detail = f"all {incident.alert_count} alerts resolved" if incident.alert_count > 1 else ""
    return IncidentChange(updated, (_event(updated, at, EventType.incident_resolved,
                                           f"alert {incident.alert_name} resolved", actor="alertmanager",
                                           detail=detail),))
