"""An alert as the core sees it, whatever monitoring system sent it (see adapters/alertmanager.py)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: AlertStatus
    # Bounded strings (see incidents.clean_labels); `alertname` is always present and non-empty.
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    # The same alert re-sent has the same key; a re-fire of it has a new one.
    key: str
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.labels["alertname"]
