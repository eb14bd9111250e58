"""What a request pins of its target, read as raw JSON (core/domain/pinning.py says what and why).

A workload: its pod template (the core fingerprints it), who last changed it (the manager of its most recent
`Update` in `managedFields`), and for a rollback the ReplicaSet `rollout undo` would go back to. A pod: its uid.
"""

from __future__ import annotations

from typing import Any

from adapters.kubernetes.calls import JSON, Calls, meta, spec
from adapters.kubernetes.objects import pruned, selector_string
from adapters.kubernetes.rollback import rollback_target
from core.domain.pinning import Observed


def changed_by(obj: JSON) -> tuple[str | None, str | None]:
    """(manager, time) of the object's most recent `Update` operation, as `managedFields` tell."""
    updates = [f for f in meta(obj).get("managedFields") or []
               if isinstance(f, dict) and f.get("operation") == "Update" and f.get("manager")]
    if not updates:
        return None, None
    latest = max(updates, key=lambda f: str(f.get("time") or ""))
    return str(latest["manager"]), (str(latest["time"]) if latest.get("time") else None)


def observed_workload(workload: JSON) -> Observed:
    template: Any = pruned(spec(workload).get("template") or {})
    manager, at = changed_by(workload)
    return Observed(template=template, changed_by=manager, changed_at=at)


async def with_rollback_target(calls: Calls, deployment: JSON, observed: Observed) -> Observed:
    """The observed state of a deployment to roll back: also the revision `rollout undo` would go to."""
    namespace = str(meta(deployment).get("namespace") or "default")
    listed = await calls.read(calls.apps.list_namespaced_replica_set, namespace,
                              label_selector=selector_string(spec(deployment).get("selector")))
    target = rollback_target(deployment, list(listed.get("items") or []))
    if target is None:
        return observed
    return observed.model_copy(update={"revision": target[0], "revision_name": target[1]})


def observed_pod(pod: JSON) -> Observed:
    uid = meta(pod).get("uid")
    return Observed(uid=str(uid) if uid else None)
