"""A verification that a later change of the same target overtook: it ends at once, `succeeded`, saying what
overtook it, and never waits for its deadline (what it would wait for is no longer what the target is asked to be).

- A scale: the target's `spec.replicas` is no longer the count this request wrote (another scale, an autoscaler).
- A restart or rollback of a Deployment: its revision moved past the one this request's write made (a later change
  of the pod template: a deploy, another restart). A Deployment's revision changes only with its template.
"""

from __future__ import annotations

from typing import Any

from adapters.kubernetes.objects import revision
from core.domain.cluster import ClusterResult
from core.domain.verify import Progress

JSON = dict[str, Any]


def overtaken_by(workload: JSON, since: ClusterResult, *, target: str, scale_to: int | None) -> str | None:
    spec = workload.get("spec") or {}
    if scale_to is not None:
        now = spec.get("replicas")
        if now is not None and int(now) != scale_to:
            return f"a later change set the replicas to {now} (this request set {scale_to})"
        return None
    if target == "deployment" and since.revision:
        now_revision, ours = revision(workload), since.revision + 1
        if now_revision > ours:
            return (f"a later change of the pod template made revision {now_revision}, past revision {ours} "
                    "that this request rolled out")
    return None


def unless_overtaken(progress: Progress, workload: JSON, since: ClusterResult, *, target: str,
                     scale_to: int | None) -> Progress:
    """`progress`, or, when a later change overtook this one before it held, a look that ends it well."""
    if progress.done:
        return progress
    why = overtaken_by(workload, since, target=target, scale_to=scale_to)
    if why is None:
        return progress
    return progress.model_copy(update={"done": True, "failed": False, "reason": None, "overtaken": why,
                                       "achieved": f"overtaken: {why}; not waiting for its own effect"})
