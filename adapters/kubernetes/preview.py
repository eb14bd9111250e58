"""What a request would change, read when it is made: the target (as the request's facts just read it, else
read here), then the operation's write as a server-side dry run (`dryRun=All`), and the objects before and
after handed to the pure lines of core/domain/changes.py.

A drain cannot be dry-run as one call: its lines come from reads (the node's pods minus DaemonSet and mirror
pods, and the PodDisruptionBudgets whose `disruptionsAllowed` would block). Workloads are also checked for
who else manages them: an autoscaling/v2 HorizontalPodAutoscaler naming them, and Argo CD, Flux or Helm.
Only reads and dry runs: nothing here changes the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes.blast import FactReader
from adapters.kubernetes.calls import JSON, Calls, spec
from adapters.kubernetes.drain import controller_ref, evictable, pod_key
from adapters.kubernetes.failures import Attempt
from adapters.kubernetes.objects import revision, selector_string
from adapters.kubernetes.rollback import plan_rollback, refuse_if_paused
from adapters.kubernetes.writes import RESTARTED_AT
from core.domain.changes import (
    Preview,
    autoscaler_note,
    autoscaler_of,
    blocking_budgets,
    change_lines,
    delete_lines,
    drain_lines,
    gitops_warnings,
    rollback_lines,
)
from core.domain.cluster import ClusterResult, TargetMissing
from core.domain.operations import (
    CordonOp,
    DeletePodOp,
    DrainOp,
    Operation,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
)

log = structlog.get_logger(__name__)


# A person waits on the preview: a transient failure is retried once, then the card says it could not be made.
PREVIEW_RETRY_DELAYS_S = (0.2,)


class Previewer:
    def __init__(self, calls: Calls) -> None:
        self._base = calls
        self._once: Calls | None = None

    @property
    def _calls(self) -> Calls:
        # Made on first use, after the executor's warm-up built the API objects the copy shares.
        if self._once is None:
            self._once = self._base.retrying(PREVIEW_RETRY_DELAYS_S)
        return self._once

    @property
    def _facts(self) -> FactReader:
        return FactReader(self._calls)

    @property
    def _apps(self) -> client.AppsV1Api:
        return self._calls.apps

    @property
    def _core(self) -> client.CoreV1Api:
        return self._calls.core

    async def preview(self, op: Operation, target: JSON | None = None) -> Preview:
        """`target`: the target object as the request's facts just read it (None: it is read here)."""
        attempt = Attempt(op=op, dry_run=True)
        if isinstance(op, ScaleOp | RestartOp | RollbackOp):
            return await self._workload(op, attempt, target)
        if isinstance(op, CordonOp | UncordonOp):
            node = target if target is not None else await self._require(self._core.read_node, op, op.name)
            after = await self._calls.write(attempt, self._core.patch_node, op.name,
                                            {"spec": {"unschedulable": isinstance(op, CordonOp)}})
            return Preview(lines=change_lines(op, node, after))
        if isinstance(op, DeletePodOp):
            if target is None:
                await self._require(self._core.read_namespaced_pod, op, op.name, op.namespace)
            pod = await self._calls.write(attempt, self._core.delete_namespaced_pod, op.name, op.namespace)
            return Preview(lines=delete_lines(op.name, await self._owner(pod)))
        if isinstance(op, DrainOp):
            return await self._drain(op, target)
        return Preview()

    async def _require(self, fn: Callable[..., Any], op: Operation, *args: Any) -> JSON:
        found = await self._calls.read_or_none(fn, *args)
        if found is None:
            where = f" in namespace {op.namespace}" if op.namespace else ""
            raise TargetMissing(f"{op.target_ref} not found{where}", reason="NotFound", status=404)
        return found

    async def _owner(self, pod: JSON) -> str | None:
        if controller_ref(pod) is None:
            return None
        return await self._facts.owner_of(pod)

    async def _workload(self, op: ScaleOp | RestartOp | RollbackOp, attempt: Attempt, target: JSON | None) -> Preview:
        readers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.read_namespaced_deployment,
            "statefulset": self._apps.read_namespaced_stateful_set,
            "daemonset": self._apps.read_namespaced_daemon_set,
        }
        workload = target if target is not None else await self._require(readers[op.target], op, op.name, op.namespace)
        if isinstance(op, ScaleOp):
            scalers: dict[str, Callable[..., Any]] = {
                "deployment": self._apps.patch_namespaced_deployment_scale,
                "statefulset": self._apps.patch_namespaced_stateful_set_scale,
            }
            after = await self._calls.write(attempt, scalers[op.target], op.name, op.namespace,
                                            {"spec": {"replicas": op.replicas}})
            lines = change_lines(op, workload, after)
        elif isinstance(op, RestartOp):
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
            patchers: dict[str, Callable[..., Any]] = {
                "deployment": self._apps.patch_namespaced_deployment,
                "statefulset": self._apps.patch_namespaced_stateful_set,
                "daemonset": self._apps.patch_namespaced_daemon_set,
            }
            after = await self._calls.write(attempt, patchers[op.target], op.name, op.namespace, body)
            lines = change_lines(op, workload, after)
        else:
            lines = await self._rollback(op, workload, attempt)
        autoscaler = autoscaler_of(op.target, op.name, await self._autoscalers(op.namespace))
        warnings = gitops_warnings(workload)
        if autoscaler is not None and not isinstance(op, ScaleOp):
            warnings = (autoscaler_note(autoscaler), *warnings)
        return Preview(lines=lines, warnings=warnings, autoscaler=autoscaler)

    async def _rollback(self, op: RollbackOp, deployment: JSON, attempt: Attempt) -> tuple[str, ...]:
        """The revision `kubectl rollout undo` would restore (as writes.py decides it), dry-run."""
        refuse_if_paused(op, deployment)
        listed = await self._calls.read(self._apps.list_namespaced_replica_set, op.namespace,
                                        label_selector=selector_string(spec(deployment).get("selector")))
        plan = plan_rollback(op, deployment, listed.get("items") or [])
        if isinstance(plan, ClusterResult):
            return (plan.summary,)
        after = await self._calls.write(attempt, self._apps.patch_namespaced_deployment, op.name, op.namespace,
                                        plan.patch, content_type="application/merge-patch+json")
        return rollback_lines(deployment, after, current=revision(deployment) or None, target=plan.revision)

    async def _autoscalers(self, namespace: str) -> list[JSON]:
        api = client.AutoscalingV2Api(self._calls.api_client)
        return await self._optional(api.list_namespaced_horizontal_pod_autoscaler, namespace)

    async def _optional(self, fn: Callable[..., Any], *args: Any) -> list[JSON]:
        """A list the preview can do without: none when the cluster does not serve it (404) or signoff may not
        list it (403); that is logged, and the request is not held up by it."""
        try:
            listed = await self._calls.read(fn, *args)
        except ApiException as error:
            if error.status not in (403, 404):
                raise
            log.warning("kubernetes.preview_list_unreadable", call=getattr(fn, "__name__", "?"), status=error.status)
            return []
        return list(listed.get("items") or [])

    async def _drain(self, op: DrainOp, target: JSON | None) -> Preview:
        node = target if target is not None else await self._require(self._core.read_node, op, op.name)
        listed = await self._calls.read(self._core.list_pod_for_all_namespaces,
                                        field_selector=f"spec.nodeName={op.name}")
        pods = evictable(listed.get("items") or [])
        evictions = [f"{pod_key(pod)} ({await self._owner(pod) or 'no controller: not recreated'})" for pod in pods]
        budgets: list[JSON] = []
        if pods:
            policy = client.PolicyV1Api(self._calls.api_client)
            budgets = await self._optional(policy.list_pod_disruption_budget_for_all_namespaces)
        return Preview(lines=drain_lines(node, evictions, blocking_budgets(pods, budgets)))
