"""Verification: what an operation's effect looks like while it takes hold, and when to look again.

The cluster adapter reads the workload and reports a `Progress` (pure data); the core decides
from it and from the deadline whether the request ends `succeeded` (verified) or `failed`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from core.domain.cluster import ClusterResult, PodTrouble, Progress

__all__ = ["DEFAULT_TIMEOUT", "PodTrouble", "Progress", "Verification", "poll_delay"]

# How long to follow an effect when neither the policy nor the workload says (policy `[verify] timeout`).
DEFAULT_TIMEOUT = timedelta(minutes=10)

# Seconds between looks at the workload: soon after the call (most rollouts of a healthy
# workload take a few seconds), then backing off so a long wait costs a few dozen reads at most.
POLL_DELAYS_S: tuple[float, ...] = (1.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)


def poll_delay(polls: int) -> timedelta:
    """How long to wait before look number `polls + 1` (the look right after the call is number 0)."""
    return timedelta(seconds=POLL_DELAYS_S[min(polls, len(POLL_DELAYS_S) - 1)])


class Verification(BaseModel):
    """What a `verifying` request carries in the database, so a restart resumes it."""

    model_config = ConfigDict(frozen=True)

    started_at: datetime
    deadline_at: datetime
    next_look_at: datetime
    baseline: ClusterResult
    looks: int = 0
    progress: Progress | None = None
    timeout_from: str = "policy"  # or "progressDeadlineSeconds"
