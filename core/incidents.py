"""Incidents: what went wrong, which requests tried to fix it, and how well that worked."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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
