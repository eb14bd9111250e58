"""Failing fast: the new pods of a rollout that will not come up, judged from one look (pure).

A new pod whose container restarted `[verify] max_restarts` times, or that has waited
`[verify] stuck_after` in an image, config or crash-loop reason, fails verification at once: waiting
for the deadline would only delay the way back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from core.domain.cluster import PodTrouble
from core.domain.durations import format_duration

# What a pod waits in that no amount of waiting fixes by itself.
STUCK_REASONS = frozenset({
    "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName", "CrashLoopBackOff",
})


class Verdict(BaseModel):
    """`reason` is None while the new pods may still come up; `stuck_since` is carried to the next look."""

    model_config = ConfigDict(frozen=True)

    reason: str | None = None
    pods: tuple[PodTrouble, ...] = ()
    stuck_since: dict[str, datetime] = {}


def judge(pods: Sequence[PodTrouble], *, max_restarts: int, stuck_after: timedelta, now: datetime,
          stuck_since: Mapping[str, datetime]) -> Verdict:
    """`stuck_since`: since when each pod has been seen waiting in one of STUCK_REASONS (as the previous
    verdict said); a pod that left those reasons starts afresh."""
    since = {p.name: stuck_since.get(p.name, now) for p in pods if p.reason in STUCK_REASONS}
    restarted = [p for p in pods if p.restarts >= max_restarts]
    stuck = [p for p in pods if p not in restarted and p.name in since and now - since[p.name] >= stuck_after]
    if not restarted and not stuck:
        return Verdict(stuck_since=since)
    parts = []
    if restarted:
        parts.append(f"{_count(restarted)} restarted {max_restarts} times or more ([verify] max_restarts)")
    if stuck:
        reasons = ", ".join(sorted({p.reason for p in stuck}))
        parts.append(f"{_count(stuck)} waited {format_duration(stuck_after)} or more in {reasons} "
                     "([verify] stuck_after)")
    broken = tuple(sorted([*restarted, *stuck], key=lambda p: p.name))
    return Verdict(reason="; ".join(parts), pods=broken, stuck_since=since)


def _count(pods: Sequence[PodTrouble]) -> str:
    return "a new pod" if len(pods) == 1 else f"{len(pods)} new pods"


def progress_note(pods: Sequence[PodTrouble]) -> str:
    """`api-7d9f-x2: CrashLoopBackOff (restarts 2) · api-7d9f-k8: Running (restarts 0)`; empty when no new pod."""
    return " · ".join(p.short() for p in sorted(pods, key=lambda p: p.name))


def said_once(pods: Sequence[PodTrouble]) -> tuple[PodTrouble, ...]:
    """The pods with each last termination told once: pods that died the same way repeat no message."""
    seen: set[tuple[str, int | None, str]] = set()
    told = []
    for pod in pods:
        last = (pod.last_reason, pod.last_exit, pod.last_message)
        told.append(pod.model_copy(update={"last_reason": "", "last_exit": None, "last_message": ""})
                    if last in seen else pod)
        seen.add(last)
    return tuple(told)
