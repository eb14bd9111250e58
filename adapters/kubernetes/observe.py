"""Looking at an operation's effect: one read of the target per look (see verify.py for the pure
judgements), dispatched by operation type through `PROGRESS`, complete for every kind at import."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes import client

from adapters.kubernetes import verify
from adapters.kubernetes.calls import JSON, Calls
from adapters.kubernetes.drain import Drain
from adapters.kubernetes.overtaken import unless_overtaken
from core.domain.cluster import ClusterResult
from core.domain.operations import (
    CordonOp,
    DeletePodOp,
    DrainOp,
    Operation,
    OperationType,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
    by_operation,
)
from core.domain.verify import PodTrouble, Progress


class Observe:
    def __init__(self, calls: Calls, drain: Drain) -> None:
        self._calls = calls
        self._drain = drain

    @property
    def _apps(self) -> client.AppsV1Api:
        return self._calls.apps

    @property
    def _core(self) -> client.CoreV1Api:
        return self._calls.core

    async def progress(self, op: Operation, since: ClusterResult) -> Progress:
        return await PROGRESS[type(op)](self, op, since)

    async def troubles(self, op: Operation, since: ClusterResult) -> tuple[PodTrouble, ...]:
        """The pods that are not Ready and why: one pod list, only when verification fails."""
        if op.namespace is None:
            return ()
        workload = await WATCHED[type(op)](self, op, since)
        if workload is None:
            return ()
        listed = await self._calls.read(self._core.list_namespaced_pod, op.namespace,
                                        label_selector=verify.selector_of(workload))
        return verify.pod_troubles(list(listed.get("items") or []))

    async def evictable_pods(self, node: str) -> tuple[str, ...]:
        return tuple(sorted(await self._drain.evictable_on(node)))

    # ---- per kind

    async def _rollout(self, op: RestartOp | RollbackOp, since: ClusterResult) -> Progress:
        workload = await self._workload(op.target, op.name, op.namespace)
        return unless_overtaken(self._judge(op.target, workload, since, None), workload, since, target=op.target,
                                scale_to=None)

    async def _scaled(self, op: ScaleOp, since: ClusterResult) -> Progress:
        workload = await self._workload(op.target, op.name, op.namespace)
        return unless_overtaken(self._judge(op.target, workload, since, op.replicas), workload, since,
                                target=op.target, scale_to=op.replicas)

    @staticmethod
    def _judge(target: str, workload: JSON, since: ClusterResult, scale_to: int | None) -> Progress:
        if target == "deployment":
            return verify.deployment_progress(workload, since, scale_to=scale_to)
        if target == "statefulset":
            return verify.stateful_set_progress(workload, since, scale_to=scale_to)
        return verify.daemon_set_progress(workload, since)

    async def _replaced(self, op: DeletePodOp, since: ClusterResult) -> Progress:
        pod = await self._calls.read_or_none(self._core.read_namespaced_pod, op.name, op.namespace)
        owner = None
        if since.owner and verify.pod_gone(pod, since):
            owner = await self._owner(since.owner, op.namespace)
        return verify.replacement_progress(pod, owner, since)

    async def _cordoned(self, op: CordonOp | UncordonOp, since: ClusterResult) -> Progress:
        node = await self._calls.read(self._core.read_node, op.name)
        return verify.node_progress(node, unschedulable=isinstance(op, CordonOp))

    async def _drained(self, op: DrainOp, since: ClusterResult) -> Progress:
        return verify.drain_progress(op.name, await self.evictable_pods(op.name))

    # ---- the workload whose pods say why it is not Ready

    async def _own_workload(self, op: RestartOp | ScaleOp | RollbackOp, since: ClusterResult) -> JSON | None:
        return await self._workload(op.target, op.name, op.namespace)

    async def _deleted_pods_owner(self, op: DeletePodOp, since: ClusterResult) -> JSON | None:
        return await self._owner(since.owner, op.namespace) if since.owner else None

    async def _no_workload(self, op: Operation, since: ClusterResult) -> JSON | None:
        return None

    # ---- reads

    async def _workload(self, target: str, name: str, namespace: str) -> JSON:
        readers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.read_namespaced_deployment,
            "statefulset": self._apps.read_namespaced_stateful_set,
            "daemonset": self._apps.read_namespaced_daemon_set,
        }
        return await self._calls.read(readers[target], name, namespace)

    async def _owner(self, owner: str, namespace: str) -> JSON | None:
        """A deleted pod's controlling owner, `ReplicaSet/api-7c9` (the kinds whose pods come back); None
        when it is gone, or of a kind whose pods no controller signoff follows replaces."""
        kind, _, name = owner.partition("/")
        if kind == "ReplicaSet":
            return await self._calls.read_or_none(self._apps.read_namespaced_replica_set, name, namespace)
        if kind == "StatefulSet":
            return await self._calls.read_or_none(self._apps.read_namespaced_stateful_set, name, namespace)
        if kind == "DaemonSet":
            return await self._calls.read_or_none(self._apps.read_namespaced_daemon_set, name, namespace)
        return None


Look = Callable[[Observe, Any, ClusterResult], Awaitable[Progress]]
Find = Callable[[Observe, Any, ClusterResult], Awaitable[JSON | None]]

# How each kind of operation is seen to hold.
PROGRESS: dict[OperationType, Look] = by_operation({
    RestartOp: Observe._rollout,
    ScaleOp: Observe._scaled,
    RollbackOp: Observe._rollout,
    DeletePodOp: Observe._replaced,
    CordonOp: Observe._cordoned,
    UncordonOp: Observe._cordoned,
    DrainOp: Observe._drained,
})

# Whose pods are listed to say why verification fails.
WATCHED: dict[OperationType, Find] = by_operation({
    RestartOp: Observe._own_workload,
    ScaleOp: Observe._own_workload,
    RollbackOp: Observe._own_workload,
    DeletePodOp: Observe._deleted_pods_owner,
    CordonOp: Observe._no_workload,
    UncordonOp: Observe._no_workload,
    DrainOp: Observe._no_workload,
})
