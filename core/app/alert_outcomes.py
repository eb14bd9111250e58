"""What the incident service says about each alert, and the records its intake passes between steps."""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from core.app.decisions import Decision
from core.app.service import RequestDraft
from core.domain.alerts import Alert, AlertStatus
from core.domain.approvals import ApprovalRequest
from core.domain.incidents import Incident


class Filed(NamedTuple):
    """What one group's transaction did: the incident, the proposal it opened with, the alerts it took."""

    incident: Incident
    request: ApprovalRequest | None
    fresh: dict[str, str]  # alert key → incident id, for the alerts this transaction recorded
    created: bool


class Prepared(NamedTuple):
    incident: Incident
    decision: Decision
    draft: RequestDraft | None

class AlertOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    fingerprint: str
    status: AlertStatus
    incident_id: str | None = None
    request_id: str | None = None
    track: str | None = None
    duplicate: bool = False
    error: str | None = None  # this alert was not taken (a bad alert, or signoff failed on it)


def failed(alert: Alert) -> AlertOutcome:
    return AlertOutcome(fingerprint=alert.fingerprint, status=alert.status,
                        error="signoff failed on this alert and logged it")
