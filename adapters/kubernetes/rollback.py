"""`kubectl rollout undo`, the pure part: which revision is previous and the merge patch restoring it.

The executor reads the deployment and its ReplicaSets (as raw JSON: templates are copied
verbatim, including fields this client version's models might not know) and writes the patch.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from adapters.kubernetes.objects import POD_TEMPLATE_HASH, REVISION, pruned, revision
from core.domain.cluster import ClusterRejected, ClusterResult
from core.domain.operations import RollbackOp

# Annotations `kubectl rollout undo` keeps from the deployment instead of taking the old ReplicaSet's.
_ROLLBACK_KEEPS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


class RollbackPlan(NamedTuple):
    patch: dict[str, Any]
    revision: int
    images: str


def refuse_if_paused(op: RollbackOp, deployment: dict[str, Any]) -> None:
    if (deployment.get("spec") or {}).get("paused"):
        # kubectl refuses too: a paused deployment would not roll the restored template out.
        raise ClusterRejected(
            f"{op.target_ref} in {op.namespace} is paused; resume it (kubectl rollout resume) before rolling back.",
            reason="DeploymentPaused",
        )


def rollback_target(deployment: dict[str, Any], replica_sets: list[dict[str, Any]]) -> tuple[int, str] | None:
    """The revision and ReplicaSet name `rollout undo` would go back to now; None when there is none."""
    owned = _owned(deployment, replica_sets)
    revisions = {revision(rs): rs for rs in owned if revision(rs) > 0}
    current = revision(deployment) or max(revisions, default=0)
    previous = max((r for r in revisions if r < current), default=None)
    if previous is None:
        return None
    return previous, str((revisions[previous].get("metadata") or {}).get("name"))


def _owned(deployment: dict[str, Any], replica_sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    uid = (deployment.get("metadata") or {}).get("uid")
    return [rs for rs in replica_sets
            if any(ref.get("controller") and ref.get("uid") == uid
                   for ref in (rs.get("metadata") or {}).get("ownerReferences") or [])]


def plan_rollback(
    op: RollbackOp, deployment: dict[str, Any], replica_sets: list[dict[str, Any]]
) -> ClusterResult | RollbackPlan:
    """The merge patch restoring the previous revision, or a result when there is nothing to do."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    owned = [
        rs
        for rs in replica_sets
        if any(
            ref.get("controller") and ref.get("uid") == meta.get("uid")
            for ref in (rs.get("metadata") or {}).get("ownerReferences") or []
        )
    ]
    revisions = {revision(rs): rs for rs in owned if revision(rs) > 0}
    current = revision(deployment) or max(revisions, default=0)
    previous = max((r for r in revisions if r < current), default=None)
    if op.to_replica_set is not None:  # pinned when the request was made: exactly that one, or nothing
        pinned = [r for r, rs in revisions.items() if (rs.get("metadata") or {}).get("name") == op.to_replica_set]
        if not pinned:
            raise ClusterRejected(
                f"ReplicaSet {op.to_replica_set}, the revision {op.target_ref} was to roll back to, is gone; "
                "nothing was changed. Request the rollback again to sign the revision there is now.",
                reason="PinnedRevisionGone")
        previous = pinned[0]
    if previous is None:
        raise ClusterRejected(
            f"{op.target_ref} in {op.namespace} has no previous revision to roll back to "
            f"(revision {current} is the only one its ReplicaSets record).",
            reason="NoPreviousRevision",
        )
    old = revisions[previous]
    template = json.loads(json.dumps((old.get("spec") or {}).get("template") or {}))
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    images = (
        ", ".join(str(c.get("image")) for c in (template.get("spec") or {}).get("containers") or [])
        or "no containers"
    )
    current_template = spec.get("template") or {}
    if pruned(current_template) == pruned(template):
        return ClusterResult(
            summary=f"{op.target_ref} already runs the template of revision {previous}; nothing changed",
            resource_version=meta.get("resourceVersion"),
            generation=meta.get("generation"),
        )
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in _ROLLBACK_KEEPS}
    annotations.update(
        {
            k: v
            for k, v in ((old.get("metadata") or {}).get("annotations") or {}).items()
            if k not in _ROLLBACK_KEEPS
        }
    )
    patch: dict[str, Any] = {
        # The precondition: the API server answers 409 if the deployment changed since we read it.
        "metadata": {"resourceVersion": meta.get("resourceVersion")},
        "spec": {"template": _merge_diff(current_template, template)},
    }
    annotation_diff = _merge_diff(meta.get("annotations") or {}, annotations)
    if annotation_diff:
        patch["metadata"]["annotations"] = annotation_diff
    return RollbackPlan(patch, previous, images)


def _merge_diff(current: Any, target: Any) -> Any:
    """The RFC 7386 merge patch that turns `current` into `target` (lists are replaced whole)."""
    if not isinstance(current, dict) or not isinstance(target, dict):
        return target
    patch: dict[str, Any] = {}
    for key in current.keys() - target.keys():
        patch[key] = None
    for key, value in target.items():
        if key not in current:
            patch[key] = value
        elif current[key] != value:
            if isinstance(current[key], dict) and isinstance(value, dict):
                patch[key] = _merge_diff(current[key], value)
            else:
                patch[key] = value
    return patch
