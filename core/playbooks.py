"""Playbooks: fixes that worked, extracted from resolved incidents and approved by people."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PlaybookStatus(StrEnum):
    proposed = "proposed"
    approved = "approved"
    rejected = "rejected"


class Trigger(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_name: str
    labels: dict[str, str] = Field(default_factory=dict)
    symptom: str = ""


class Vote(BaseModel):
    model_config = ConfigDict(frozen=True)

    person: str
    approve: bool
    via: str
    at: datetime


class Playbook(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    trigger: Trigger
    template: str
    risk: str | None = None
    source_incident: str
    source_request: str | None = None
    effectiveness: int
    status: PlaybookStatus = PlaybookStatus.proposed
    votes: tuple[Vote, ...] = ()
    created_at: datetime
    decided_at: datetime | None = None
    times_proposed: int = 0
    times_executed: int = 0
    times_succeeded: int = 0
    version: int = 0
