"""What an approval request is made of: its states, where its cards go, its signatures, its outcome and
where a proposed one came from. Re-exported by `core.domain.approvals`, which holds the request and its
transitions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class RequestStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    executing = "executing"
    verifying = "verifying"
    succeeded = "succeeded"
    failed = "failed"
    blocked = "blocked"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"
    interrupted = "interrupted"
    stale = "stale"  # the target changed after the request was made: nothing runs (core/domain/pinning.py)

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


# Where a request ends: nothing moves it any further.
TERMINAL_STATUSES = frozenset(
    s for s in RequestStatus
    if s not in (RequestStatus.pending, RequestStatus.approved, RequestStatus.executing, RequestStatus.verifying)
)


class Place(BaseModel):
    """A chat channel a card is posted to."""

    model_config = ConfigDict(frozen=True)

    platform: str
    channel: str


# A signer's comment ("checked the dashboards"): shown beside them on the card, kept in the signed event.
MAX_COMMENT_LENGTH = 500


class Signature(BaseModel):
    model_config = ConfigDict(frozen=True)

    person: str
    via: str
    at: datetime
    # What the signer said; not part of `signed_digest`, which stands for the operation alone.
    comment: str | None = None


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: RequestStatus
    summary: str
    reason: str | None = None
    dry_run: str | None = None
    duration_ms: int = 0
    finished_at: datetime


class Proposal(BaseModel):
    """Where a proposed request came from (decision manager tracks)."""

    model_config = ConfigDict(frozen=True)

    track: str
    playbook_id: str | None = None
    similarity: float | None = None
    rationale: str = ""
