"""Verification reads: what `kubectl rollout status` waits for, per operation, as a core `Progress`.

The judgements are pure functions of the raw JSON (the target as a watch or a GET gave it, its
pods), so they are tested without a cluster; `new_pods` says how each pod of the newest template
is doing, for failing fast and the progress notes.
"""

from __future__ import annotations

from typing import Any, cast

from core.domain.cluster import ClusterResult
from core.domain.verify import PodTrouble, Progress

JSON = dict[str, Any]
MAX_PODS_NAMED = 5


def _status(obj: JSON) -> JSON:
    return obj.get("status") or {}


def _spec(obj: JSON) -> JSON:
    return obj.get("spec") or {}


def _observed(obj: JSON, since: ClusterResult) -> bool:
    """The controller has seen the change: observedGeneration caught up with the generation written."""
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    observed = int(_status(obj).get("observedGeneration") or 0)
    return observed >= generation and observed >= (since.generation or 0)


def deployment_progress(obj: JSON, since: ClusterResult, *, scale_to: int | None = None) -> Progress:
    spec, status = _spec(obj), _status(obj)
    desired = int(spec.get("replicas", 1)) if scale_to is None else scale_to
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    total = int(status.get("replicas") or 0)
    deadline = spec.get("progressDeadlineSeconds")
    failed, reason = False, None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            failed, reason = True, "ProgressDeadlineExceeded"
    # Available counts old pods too; what the rollout has made available is the updated ones that are
    # (kubectl's "N of M updated replicas are available"), the old ones assumed available.
    available_updated = max(0, min(updated, available - max(0, total - updated)))
    observed = _observed(obj, since)
    if scale_to is not None:
        done = observed and ready == desired and total == desired and available == desired
    else:
        # kubectl rollout status: all replicas updated and available, and no old replicas left.
        done = observed and updated == desired and total == desired and available == desired
    return Progress(
        done=done, failed=failed and not done, reason=reason, desired=desired, updated=updated,
        available=available if scale_to is not None else available_updated, ready=ready,
        deadline_s=int(deadline) if deadline is not None else None,
        achieved=f"{ready}/{desired} pods ready", waiting_for="the rollout",
    )


def _on_delete(obj: JSON, example_pod: str) -> str | None:
    """Why a rollout of this StatefulSet or DaemonSet can never complete by itself, or None: with
    `updateStrategy: OnDelete` a new template replaces no pod (`kubectl rollout status` gives up at once)."""
    if (_spec(obj).get("updateStrategy") or {}).get("type") != "OnDelete":
        return None
    meta = obj.get("metadata") or {}
    return (f"{str(obj.get('kind') or 'the workload').lower()}/{meta.get('name')} has updateStrategy OnDelete: "
            "the new template replaces no pod until one is deleted. Delete its pods one at a time, each once "
            f"the previous one's replacement is Ready (`delete pod {example_pod} -n {meta.get('namespace')}`)")


def stateful_set_progress(obj: JSON, since: ClusterResult, *, scale_to: int | None = None) -> Progress:
    spec, status = _spec(obj), _status(obj)
    desired = int(spec.get("replicas", 1)) if scale_to is None else scale_to
    ready = int(status.get("readyReplicas") or 0)
    total = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    same_revision = status.get("currentRevision") == status.get("updateRevision")
    done = _observed(obj, since) and same_revision and ready == desired and total == desired
    stuck = _on_delete(obj, f"{(obj.get('metadata') or {}).get('name')}-0") if scale_to is None else None
    return Progress(done=done, failed=stuck is not None and not done, reason=stuck if not done else None,
                    desired=desired, updated=updated if scale_to is None else None, ready=ready,
                    achieved=f"{ready}/{desired} pods ready", waiting_for="the rollout")


def daemon_set_progress(obj: JSON, since: ClusterResult) -> Progress:
    status = _status(obj)
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    done = _observed(obj, since) and updated == desired and available == desired
    stuck = _on_delete(obj, "<pod>")
    return Progress(done=done, failed=stuck is not None and not done, reason=stuck if not done else None,
                    desired=desired, updated=updated, available=available,
                    achieved=f"{available}/{desired} pods available", waiting_for="the rollout")


def node_progress(obj: JSON, *, unschedulable: bool) -> Progress:
    now = bool(_spec(obj).get("unschedulable"))
    name = (obj.get("metadata") or {}).get("name", "the node")
    state = "cordoned" if unschedulable else "schedulable"
    return Progress(done=now == unschedulable, achieved=f"{name} is {state}",
                    waiting_for=f"{name} to be {state}")


def drain_progress(node: str, left: tuple[str, ...]) -> Progress:
    """A drained node: no evictable pod left on it (DaemonSet and mirror pods stay by design)."""
    if not left:
        return Progress(done=True, achieved=f"node/{node} drained: no evictable pod left")
    shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    return Progress(waiting_for=f"{len(left)} evictable pod(s) still on node/{node}: {shown}")


def pod_gone(pod: JSON | None, since: ClusterResult) -> bool:
    """The deleted pod no longer exists (a pod of the same name with another uid is its replacement)."""
    return pod is None or (pod.get("metadata") or {}).get("uid") != since.uid


def pod_ready(pod: JSON) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in _status(pod).get("conditions") or [])


def replacement_progress(pod: JSON | None, owner: JSON | None, since: ClusterResult) -> Progress:
    """A deleted pod: gone, and its owner's replacement Ready (a bare pod: just gone)."""
    gone = pod_gone(pod, since)
    kind = (since.owner or "").split("/", 1)[0]
    if not since.owner or owner is None:
        return Progress(done=gone, achieved="the pod is gone", waiting_for="the pod to go")
    if kind == "StatefulSet":
        # Same name, new uid: the replacement is the pod read.
        ready = pod is not None and gone and pod_ready(pod)
        return Progress(done=ready, achieved="the replacement pod is Ready",
                        waiting_for="the replacement pod to be Ready")
    status = _status(owner)
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        count = int(status.get("numberReady") or 0)
    else:
        desired = int(_spec(owner).get("replicas", 1))
        count = int(status.get("readyReplicas") or 0)
    done = gone and count >= desired
    return Progress(done=done, desired=desired, ready=count, achieved="the replacement pod is Ready",
                    waiting_for="the replacement pod to be Ready")


def pod_troubles(pods: list[JSON]) -> tuple[PodTrouble, ...]:
    """The pods that are not Ready and why, from their container statuses (newest first, a few)."""
    newest_first = sorted(pods, key=_created, reverse=True)
    troubles = [pod_state(pod) for pod in newest_first if not pod_ready(pod)]
    return tuple(sorted(troubles[:MAX_PODS_NAMED], key=lambda t: t.name))


def _created(pod: JSON) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", ""))


def pod_state(pod: JSON) -> PodTrouble:
    """How one pod is doing: its containers' waiting or terminated reason (`Ready` when it is), the most
    restarts, and the last termination of the container that restarted most."""
    name = str((pod.get("metadata") or {}).get("name", "?"))
    status = _status(pod)
    reason, restarts, last = "", -1, cast(JSON, {})
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        count = int(container.get("restartCount") or 0)
        if count > restarts:
            restarts, last = count, (container.get("lastState") or {}).get("terminated") or {}
        state = container.get("state") or {}
        found = (state.get("waiting") or {}).get("reason") or (state.get("terminated") or {}).get("reason")
        if found and not reason:
            reason = str(found)
        elif not reason and container.get("ready") is False:
            reason = "NotReady"
    if pod_ready(pod):
        reason = "Ready"
    elif not reason:
        scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        reason = str((scheduled or {}).get("reason") or status.get("phase") or "NotReady")
    exit_code = last.get("exitCode")
    return PodTrouble(name=name, reason=reason, restarts=max(0, restarts),
                      last_exit=int(exit_code) if exit_code is not None else None,
                      last_reason=str(last.get("reason") or ""), last_message=str(last.get("message") or "")[:300])


def _template_hash(pod: JSON) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get("pod-template-hash") or labels.get("controller-revision-hash") or "")


def new_pods(pods: list[JSON]) -> tuple[PodTrouble, ...]:
    """The pods of the workload's newest template (the template hash of the pod created last), not being
    deleted, and how each is doing. Old pods are not judged: a restart may be what fixes them."""
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    if not live:
        return ()
    newest = _template_hash(max(live, key=_created))
    return tuple(sorted((pod_state(p) for p in live if _template_hash(p) == newest), key=lambda t: t.name))


def selector_of(obj: JSON) -> str:
    labels = (_spec(obj).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
