"""Each write, as the API call `kubectl` would make (docs/design.md §2): restart, scale, rollback,
delete, cordon and uncordon here, the drain in drain.py; `APPLY` dispatches by operation type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes.calls import JSON, MERGE_PATCH, Calls, meta, result, spec
from adapters.kubernetes.drain import Drain, controller_ref
from adapters.kubernetes.failures import Attempt
from adapters.kubernetes.objects import revision, selector_string
from adapters.kubernetes.rollback import RollbackPlan, plan_rollback, refuse_if_paused
from adapters.kubernetes.stamp import stamp_patch, stamped
from core.domain.cluster import ClusterRejected, ClusterResult
from core.domain.operations import (
    CordonOp,
    DeletePodOp,
    DrainOp,
    OperationType,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
    by_operation,
)

log = structlog.get_logger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _generation(obj: JSON) -> int | None:
    value = meta(obj).get("generation")
    return int(value) if value is not None else None


class Writes:
    def __init__(self, calls: Calls, drain: Drain, *, conflict_retries: int = 3) -> None:
        self._calls = calls
        self._drain = drain
        self._conflict_retries = conflict_retries

    @property
    def _apps(self) -> client.AppsV1Api:
        return self._calls.apps

    @property
    def _core(self) -> client.CoreV1Api:
        return self._calls.core

    async def restart(self, op: RestartOp, attempt: Attempt) -> ClusterResult:
        patchers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.patch_namespaced_deployment,
            "statefulset": self._apps.patch_namespaced_stateful_set,
            "daemonset": self._apps.patch_namespaced_daemon_set,
        }
        # kubectl writes whole seconds; two restarts within one second would then patch nothing and
        # restart nothing. RFC 3339 allows fractions, so every approved restart really rolls the pods.
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = stamped({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}, attempt)
        # Re-sent after a transient failure, the same body carries the same restartedAt: still one rollout.
        obj = await self._calls.write(attempt, patchers[op.target], op.name, op.namespace, body, retry_safe=True)
        generation = _generation(obj)
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would restart (generation {generation})"
        else:
            summary = f"{op.target_ref} restarted (generation {generation})"
        # The Deployment revision the answer shows: the revision before the rollout.
        return result(summary, obj, generation, revision=revision(obj) or None)

    async def scale(self, op: ScaleOp, attempt: Attempt) -> ClusterResult:
        patchers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.patch_namespaced_deployment_scale,
            "statefulset": self._apps.patch_namespaced_stateful_set_scale,
        }
        body = {"spec": {"replicas": op.replicas}}
        scale = await self._calls.write(attempt, patchers[op.target], op.name, op.namespace, body, retry_safe=True)
        if attempt.stamp:  # the scale subresource has no annotations of its own: the object's, right after
            owners = {"deployment": self._apps.patch_namespaced_deployment,
                      "statefulset": self._apps.patch_namespaced_stateful_set}
            await self._calls.write(attempt, owners[op.target], op.name, op.namespace, stamp_patch(attempt),
                                    retry_safe=True)
        running = (scale.get("status") or {}).get("replicas")
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would scale to {op.replicas} replicas ({running} running now)"
        else:
            summary = f"{op.target_ref} scaled to {op.replicas} replicas ({running} running before)"
        return result(summary, scale)

    async def rollback(self, op: RollbackOp, attempt: Attempt) -> ClusterResult:
        """`kubectl rollout undo`, guarded by the resourceVersion it read: a concurrent change
        answers 409, and the whole decision (which revision is previous) is taken again."""
        for try_number in range(1, self._conflict_retries + 2):
            deployment = await self._calls.read(self._apps.read_namespaced_deployment, op.name, op.namespace)
            plan = await self._rollback_plan(op, deployment)
            if isinstance(plan, ClusterResult):
                return plan
            try:
                obj = await self._calls.write(attempt, self._apps.patch_namespaced_deployment, op.name, op.namespace,
                                              stamped(plan.patch, attempt), content_type=MERGE_PATCH)
            except ApiException as error:
                if error.status != 409:
                    raise
                log.warning("kubernetes.rollback_conflict", target=op.target_ref, namespace=op.namespace,
                            attempt=try_number, retries=self._conflict_retries)
                attempt.sent_write = False  # a 409 is a definite "not applied"
                continue
            generation = _generation(obj)
            verb = "would roll back" if attempt.dry_run else "rolled back"
            prefix = "dry run: " if attempt.dry_run else ""
            summary = (f"{prefix}{op.target_ref} {verb} to revision {plan.revision} ({plan.images}; "
                       f"generation {generation})")
            return result(summary, obj, generation, revision=revision(deployment) or None)
        raise ClusterRejected(
            f"{op.target_ref} in {op.namespace} kept changing while it was being rolled back "
            f"(409 Conflict on {self._conflict_retries + 1} attempts); nothing was changed. "
            "Look at what else is deploying it, then try again.",
            reason="Conflict",
            status=409,
        )

    async def _rollback_plan(self, op: RollbackOp, deployment: JSON) -> ClusterResult | RollbackPlan:
        """The deployment's ReplicaSets read, then the pure plan (see rollback.py)."""
        refuse_if_paused(op, deployment)
        listed = await self._calls.read(self._apps.list_namespaced_replica_set, op.namespace,
                                        label_selector=selector_string(spec(deployment).get("selector")))
        return plan_rollback(op, deployment, listed.get("items") or [])

    async def delete(self, op: DeletePodOp, attempt: Attempt) -> ClusterResult:
        try:
            pod = await self._calls.write(attempt, self._core.delete_namespaced_pod, op.name, op.namespace,
                                          retry_safe=True)
        except ApiException as error:
            if error.status != 404 or not attempt.retried:
                raise
            # The earlier attempt's answer was lost, but it deleted the pod.
            return ClusterResult(summary=f"{op.target_ref} deleted (confirmed gone after a retry)")
        grace = meta(pod).get("deletionGracePeriodSeconds")
        when = f"{grace}s grace period" if grace is not None else "terminating"
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would be deleted ({when})"
        else:
            summary = f"{op.target_ref} deleted ({when})"
        owner = controller_ref(pod)
        return result(summary, pod, uid=meta(pod).get("uid"),
                      owner=f"{owner.get('kind')}/{owner.get('name')}" if owner is not None else None)

    async def cordon(self, op: CordonOp, attempt: Attempt) -> ClusterResult:
        return await self._schedulable(op, attempt, unschedulable=True)

    async def uncordon(self, op: UncordonOp, attempt: Attempt) -> ClusterResult:
        return await self._schedulable(op, attempt, unschedulable=False)

    async def _schedulable(self, op: CordonOp | UncordonOp, attempt: Attempt, *, unschedulable: bool) -> ClusterResult:
        word = "cordoned" if unschedulable else "uncordoned"
        node = await self._calls.read(self._core.read_node, op.name)
        if bool(spec(node).get("unschedulable")) == unschedulable:
            # As kubectl does: nothing to write, and saying so is more useful than a no-op patch.
            state = "cordoned" if unschedulable else "schedulable"
            return result(f"{op.target_ref} is already {state}; nothing changed", node)
        patched = await self._calls.write(attempt, self._core.patch_node, op.name,
                                          stamped({"spec": {"unschedulable": unschedulable}}, attempt),
                                          retry_safe=True)
        summary = f"dry run: {op.target_ref} would be {word}" if attempt.dry_run else f"{op.target_ref} {word}"
        return result(summary, patched)

    async def drain(self, op: DrainOp, attempt: Attempt) -> ClusterResult:
        return await self._drain.run(op, attempt)


# What `apply` does for each kind of operation.
APPLY: dict[OperationType, Callable[[Writes, Any, Attempt], Awaitable[ClusterResult]]] = by_operation({
    RestartOp: Writes.restart,
    ScaleOp: Writes.scale,
    RollbackOp: Writes.rollback,
    DeletePodOp: Writes.delete,
    CordonOp: Writes.cordon,
    UncordonOp: Writes.uncordon,
    DrainOp: Writes.drain,
})
