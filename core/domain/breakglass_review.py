"""A break glass on a request, and the review it owes: who broke the glass, why, and who countersigned or
disputed it since. Stored with the request (its version guards every change, so one person countersigns once,
across replicas)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictInt, computed_field


class ReviewStatus(StrEnum):
    open = "open"
    countersigned = "countersigned"  # `review_quorum` reviewers countersigned: cleared
    disputed = "disputed"            # a reviewer disputed it: the leads are told; still owed countersignatures
    overdue = "overdue"              # still open after `review_within`: reminded and escalated once


class BreakglassRules(BaseModel):
    """`[breakglass]`: who may execute a pending request on their own signature, and the review it owes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    who: tuple[str, ...]  # groups, or schedules as `oncall.<name>`
    after: timedelta = timedelta(minutes=5)
    review_within: timedelta = timedelta(hours=24)
    reviewers: tuple[str, ...] = ()  # groups; the policy file fills in the highest risk level's approvers
    review_quorum: StrictInt = Field(default=1, ge=1, le=25)


class Dispute(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str
    reason: str
    at: datetime


class BreakGlass(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str
    reason: str
    at: datetime
    review_due: datetime
    reviewers: tuple[str, ...] = ()
    review_quorum: int = 1
    could_sign: tuple[str, ...] = ()  # everyone who could have signed, told in the thread
    countersigned_by: tuple[str, ...] = ()
    disputes: tuple[Dispute, ...] = ()
    status: ReviewStatus = ReviewStatus.open
    reminded_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def disputed_by(self) -> tuple[str, ...]:
        return tuple(d.by for d in self.disputes)

    @property
    def cleared(self) -> bool:
        return self.status is ReviewStatus.countersigned
